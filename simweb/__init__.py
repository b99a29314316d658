"""simweb: a deterministic simulated web of Chinese university disclosure portals.

Run :class:`SimWeb` as an HTTP forward proxy on 127.0.0.1 and point crawlers at it
(``http_proxy=web.proxy_url``); truth tables live in :mod:`simweb.truth`.

Hosts:

* ``xxgk.webplus-univ.edu.cn`` – WebPlus/Sudy, 模拟理工大学 (PDF reports); two pages answer
  429 / 503 with ``Retry-After: 1`` once before serving (``truth.THROTTLED``)
* ``xxgk.vsb-univ.edu.cn`` – VSB 博达, 模拟师范大学 (DOCX report; day 2 adds a PDF)
* ``info.jsp-college.edu.cn`` – GBK JSP CMS, 模拟职业技术学院, 专科 (RTF ``.doc`` report);
  unknown URLs answer 200 with its empty article frame (soft 404s only a probe catches)
* ``www.trs-univ.edu.cn`` – static TRS, 模拟综合大学 (HTML report)
* helpers: ``www.moe-sim.gov.cn``, ``slow.example-univ.edu.cn``, ``refused.example-univ.edu.cn``,
  ``nxdomain.example-univ.edu.cn``, ``tls-bad.example-univ.edu.cn`` (https),
  ``zsb.webplus-univ.edu.cn`` (Ruishu 412), ``cwc.vsb-univ.edu.cn`` (加速乐 521);
  any other host gets a Squid DNS error.

The server times every answer (:attr:`SimWeb.events`) and counts requests in flight per
origin host (:attr:`SimWeb.peak_in_flight`); ``SimWeb(latency={host: seconds})`` makes a
host slow enough for a crawler's requests to it to overlap.
"""

from __future__ import annotations

from simweb.server import SimWeb

__all__ = ["SimWeb"]
