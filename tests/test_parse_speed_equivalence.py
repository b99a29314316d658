"""The parse-path shortcuts give the answers of the plain computations they replace.

Prefilters in :mod:`crawler.soft404`, the pre-decoded ``Fetch.text``, the canonical-URL
caches in :mod:`crawler.urls` and ``was_redirected``'s equal-strings shortcut.
"""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import pytest

from crawler import maintext, soft404, urls
from crawler.classify import classify
from crawler.decode import decode_body
from crawler.fetch import Fetch
from crawler.htmlparse import analyze
from crawler.soft404 import CJK_PATTERNS, EN_PATTERNS, was_redirected

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
URL = "http://xxgk.example-univ.edu.cn/info/1021/1234.htm"
HOME = "http://xxgk.example-univ.edu.cn/index.htm"
HTML = {"content-type": b"text/html; charset=utf-8"}


def _plain_find_phrase(text: str) -> str | None:
    """find_phrase without prefilters: every pattern, in order."""
    dense = re.sub(r"\s+", "", text)
    for pattern in CJK_PATTERNS:
        if match := pattern.search(dense):
            return match.group(0)
    for pattern in EN_PATTERNS:
        if match := pattern.search(text):
            return match.group(0)
    return None


def _texts() -> list[str]:
    words = ["页面", "文章", "信息", "已", "经", "被", "删除", "不存在", "找不到", "查无", "参数", "错误", "有误",
             "无效", "不正确", "无法显示", "该页", "了", "未找到", "走丢了", "去火星了", "id", "ID", "编号", "Page", "下架", "未发布", "无此", "没有", "该",
             "NOT", "found", "FOUND", "404", "410", "error", "the", "requested", "url", "could", "be", "No",
             "such", "ſuch", "fıle", "İtem", "doesn't", "exist", " ", "\u3000", "-", "：", "栏目", "新闻", "通知"]
    rng = random.Random(7)
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 8))) for _ in range(3000)]
    texts += ["".join(rng.choice(words) for _ in range(rng.randint(1, 6))) for _ in range(3000)]
    for path in sorted(FIXTURES.glob("*.html")):
        info = analyze(decode_body(path.read_bytes(), HTML, URL)[0])
        texts += [info.title, *info.headings, *info.blocks, *info.alerts]
    return texts


def test_find_phrase_prefilters_change_nothing() -> None:
    texts = _texts()
    assert any(_plain_find_phrase(t) for t in texts) and not all(_plain_find_phrase(t) for t in texts)
    for text in texts:
        assert soft404._find_phrase(text) == _plain_find_phrase(text), text


def test_gone_core_matches_exactly_when_gone_does() -> None:
    pieces = ["已", "经", "被", "了", "删除", "下线", "下架", "未发布", "不存在", "无法", "访问", "找不到", "出错了", "x",
              "过期"]
    for n in range(1, 4):
        for combo in itertools.product(pieces, repeat=n):
            text = "".join(combo)
            assert bool(soft404._GONE_RE.search(text)) == bool(soft404._GONE_CORE_RE.search(text)), text


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.html")), ids=lambda p: p.name)
def test_pre_decoded_text_gives_the_same_verdicts(path: Path) -> None:
    body = path.read_bytes()
    for status, expect in itertools.product((200, 404, 500, 521), ("page", "list", "attachment")):
        fetch = Fetch(url=URL, status=status, headers=HTML, body=body, final_url=URL, expect=expect,
                      home_urls=(HOME,))
        text = decode_body(body, HTML, URL)[0]
        given = Fetch(url=URL, status=status, headers=HTML, body=body, final_url=URL, expect=expect,
                      home_urls=(HOME,), text=text)
        assert classify(given) == classify(fetch)


def test_was_redirected_shortcut() -> None:
    assert not was_redirected(Fetch(url=URL, final_url=URL))
    assert not was_redirected(Fetch(url=URL, final_url=None))
    assert not was_redirected(Fetch(url=URL, final_url=URL + "#top"))
    assert was_redirected(Fetch(url=URL, final_url=HOME))
    assert was_redirected(Fetch(url=URL, final_url=URL, redirect_chain=[URL]))


@pytest.mark.parametrize("href", [
    "/index.htm", "../info/1.htm", "a b.htm?q=中文&utm_source=x", "HTTP://Example.EDU.cn:80/./a/../b/",
    "//例子.测试/路径", "http://a/%7Euser/%2f", "http://u:p@x.cn/a b", "?page=2", "#top", "javascript:void(0)",
    "http://[::1]:8080/x", "http://x.cn/a;jsessionid=ABC?sid=12&sid2=1", "\\\\server\\share",
])
def test_canonical_caches_give_the_uncached_answer(href: str) -> None:
    bases = ["http://xxgk.example-univ.edu.cn/xxgk/list.htm", "https://www.x.edu.cn/a/b/", None]
    for base, encoding in itertools.product(bases, (None, "gbk")):
        urls._canonicalize_cached.cache_clear()
        urls._canonical_absolute_cached.cache_clear()
        cold = urls.canonicalize(href, base, encoding=encoding)
        warm = urls.canonicalize(href, base, encoding=encoding)
        uncached = urls._canonicalize_safe(href, base, encoding)
        assert cold == warm == uncached
        if cold is not None:
            assert urls.canonicalize(cold) == cold


def _plain_strip_volatile(text: str, *, line: bool = False) -> str:
    """strip_volatile without its gates: every pattern, in order."""
    for pattern in maintext.VOLATILE_PATTERNS:
        if line and pattern is maintext.BARE_DATE_WIDGET:
            if pattern.fullmatch(text.strip()):
                return ""
            continue
        text = pattern.sub(" ", text)
    return text


def test_strip_volatile_gate_changes_nothing() -> None:
    pieces = ["浏览", "次数", "点击", "阅读", "访问", "访客", "查看", "量", "：", ":", "您是", "第", "位", "总", "今日",
              "本日", "在线", "人数", "当前", "今天是", "当前日期", "北京时间", "系统时间", "页面", "生成", "执行", "耗时",
              "用时", "星期一", "周五", "礼拜日", "农历", "壬寅年", "九月", "廿八", "2022年11月21日", "2022-10-29",
              "12:30:05", "0.023", "秒", "ms", "Processed in", "0.01 second(s)", "generated at", "2024-01-02T03:04",
              "page cached on", "PROCEſſED in", "123", "45", "次", "人", "通知", "关于", "信息公开", " ", "\u3000"]
    rng = random.Random(11)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 7))) for _ in range(4000)]
    texts += [" ".join(rng.choice(pieces) for _ in range(rng.randint(1, 7))) for _ in range(4000)]
    # one line for each pattern, with only its own gate word
    texts += ["浏览次数：123", "阅读 56 次", "您是第 1234 位", "总访客 88", "当前在线：12人", "当前日期：2022-11-21",
              "北京时间 2022-11-21 08:00", "2022年11月21日 周一", "2022年11月21日 农历十月初一", "执行耗时 0.023 秒",
              "Processed in 0.01 second(s), 12 queries", "Page cached on 2024-01-02 03:04:05", "rendered in 12 ms"]
    texts += _texts()
    changed = 0
    for text in texts:
        for line in (False, True):
            expected = _plain_strip_volatile(text, line=line)
            assert maintext.strip_volatile(text, line=line) == expected, (text, line)
            changed += expected != text
    assert changed > 200  # the corpus does exercise the patterns
