"""AnswerReuseMiddleware on fixture responses: a page this crawl already downloaded is not
downloaded again when a redirect (or the crawl's own later request) asks for it."""

from __future__ import annotations

from scrapy import Request
from scrapy.http import HtmlResponse

from crawler.middlewares import AnswerReuseMiddleware


def _request(url: str, **meta) -> Request:
    return Request(url, meta={"xxgk": {"site": "s", **meta.pop("xxgk", {})}, **meta})


def _answer(request: Request, body: bytes = b"<html><body>main</body></html>", status: int = 200) -> HtmlResponse:
    return HtmlResponse(request.url, status=status, body=body, request=request,
                        headers={"Content-Type": "text/html; charset=utf-8"})


def _download(reuse: AnswerReuseMiddleware, request: Request, body: bytes = b"<html>x</html>",
              status: int = 200) -> tuple[HtmlResponse, bool]:
    """What the downloader would hand the spider, and whether the network was used."""
    kept = reuse.process_request(request)
    if kept is not None:
        return reuse.process_response(request, kept), False
    return reuse.process_response(request, _answer(request, body, status)), True


def test_a_redirect_to_a_page_already_downloaded_is_answered_from_that_download():
    reuse = AnswerReuseMiddleware()
    _response, fetched = _download(reuse, _request("http://a.test/main.htm"), b"<html>home</html>")
    assert fetched
    redirected = _request("http://a.test/main.htm", redirect_urls=["http://a.test/index.htm"])
    response, fetched = _download(reuse, redirected, b"<html>other</html>")
    assert not fetched
    assert response.body == b"<html>home</html>" and response.status == 200
    assert response.request is redirected and response.meta["redirect_urls"] == ["http://a.test/index.htm"]
    assert redirected.meta["xxgk_reused"] is True


def test_the_first_download_is_never_flagged_reused():
    reuse = AnswerReuseMiddleware()
    request = _request("http://a.test/x.htm")
    _download(reuse, request)
    assert "xxgk_reused" not in request.meta


def test_renders_challenge_retries_other_methods_and_failures_are_never_reused():
    reuse = AnswerReuseMiddleware()
    _download(reuse, _request("http://a.test/p.htm"))
    for request in (_request("http://a.test/p.htm", playwright=True),
                    _request("http://a.test/p.htm", xxgk={"challenge_retry": "cookies"}),
                    Request("http://a.test/p.htm", method="HEAD", meta={"xxgk": {}})):
        assert reuse.process_request(request) is None, request
    # An error answer is not kept: asking again goes to the network.
    _download(reuse, _request("http://a.test/gone.htm"), status=404)
    assert reuse.process_request(_request("http://a.test/gone.htm")) is None
    # Nor is a 304 restored from the archive (it cost no body bytes).
    restored = _request("http://a.test/old.htm", xxgk_not_modified=True)
    reuse.process_response(restored, _answer(restored))
    assert reuse.process_request(_request("http://a.test/old.htm")) is None


def test_recent_answers_are_bounded_by_count_and_bytes_but_home_pages_stay():
    reuse = AnswerReuseMiddleware(max_answers=3, max_bytes=8_000)
    _download(reuse, _request("http://a.test/", xxgk={"home": True}), b"<html>home</html>")
    for i in range(5):
        _download(reuse, _request(f"http://a.test/{i}.htm"))
    kept = [i for i in range(5) if reuse.process_request(_request(f"http://a.test/{i}.htm")) is not None]
    assert kept == [2, 3, 4]
    assert reuse.process_request(_request("http://a.test/")) is not None
    # A body over an eighth of the byte budget is never kept; total bytes stay within it.
    _download(reuse, _request("http://a.test/big.htm"), b"x" * 1_001)
    assert reuse.process_request(_request("http://a.test/big.htm")) is None
    for i in range(3):
        _download(reuse, _request(f"http://a.test/mid{i}.htm"), b"y" * 1_000)
    assert reuse._bytes <= 8_000


def test_a_hit_keeps_an_answer_from_being_the_next_dropped():
    reuse = AnswerReuseMiddleware(max_answers=2)
    _download(reuse, _request("http://a.test/a.htm"))
    _download(reuse, _request("http://a.test/b.htm"))
    assert reuse.process_request(_request("http://a.test/a.htm")) is not None  # a is now the newest
    _download(reuse, _request("http://a.test/c.htm"))
    assert reuse.process_request(_request("http://a.test/a.htm")) is not None
    assert reuse.process_request(_request("http://a.test/b.htm")) is None


def test_reuse_can_be_turned_off():
    reuse = AnswerReuseMiddleware(max_answers=0)
    _download(reuse, _request("http://a.test/p.htm"))
    assert reuse.process_request(_request("http://a.test/p.htm")) is None
