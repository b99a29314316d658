"""The site registry contract: valid files load, malformed ones are rejected with a message
naming the file, the site and the field."""

from __future__ import annotations

import pytest

from schedules.registry import DEFAULT_REGISTRY, RegistryError, load_registry, parse_registry

GOOD = """
[[site]]
id = "wust"
name = "武汉科技大学"
portal = "https://xxgk.wust.edu.cn/main.htm"
allowed_domains = ["xxgk.wust.edu.cn"]
schedule = "0 3 * * 1"
render = "auto"
max_pages = 20000

[[site]]
id = "two-portals"
name = "两个入口"
portal = ["http://a.example.edu.cn/", "http://b.example.edu.cn/x/"]
"""


def test_bundled_registry_lists_the_five_seed_universities():
    sites = load_registry(DEFAULT_REGISTRY)
    names = {s.name for s in sites}
    assert names == {"武汉科技大学", "浙江工业大学", "齐齐哈尔高等师范专科学校", "哈尔滨工程大学",
                     "哈尔滨城市职业学院"}
    wust = next(s for s in sites if s.id == "wust")
    assert wust.portal == ("https://xxgk.wust.edu.cn/main.htm",)  # the URL its report gives


def test_bundled_demo_registry_is_valid():
    from pathlib import Path

    import simweb

    sites = load_registry(Path(simweb.__file__).with_name("demo_sites.toml"))
    assert len(sites) >= 3


def test_good_registry_and_defaults():
    wust, two = parse_registry(GOOD, "r.toml")
    assert wust.schedule == "0 3 * * 1" and wust.max_pages == 20000
    assert two.allowed_domains == ("a.example.edu.cn", "b.example.edu.cn")
    assert two.render == "auto" and two.schedule is None


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[[site]\nid=", ["r.toml", "not valid TOML"]),
        ("title = 'x'", ["r.toml", "no [[site]]"]),
        ('[[site]]\nname="x"\nportal="http://a.cn/"', ["site #1", "'id'"]),
        ('[[site]]\nid="Bad Id"\nportal="http://a.cn/"', ["site #1", "'id'"]),
        ('[[site]]\nid="a"\nname="x"', ["id='a'", "'portal' is missing"]),
        ('[[site]]\nid="a"\nportal="ftp://a.cn/"', ["id='a'", "portal", "not an http(s) URL"]),
        ('[[site]]\nid="a"\nportal="http://a.cn/"\nschedule="61 * * * *"', ["id='a'", "'schedule'"]),
        ('[[site]]\nid="a"\nportal="http://a.cn/"\nrender="sometimes"', ["id='a'", "'render'"]),
        ('[[site]]\nid="a"\nportal="http://a.cn/"\nmax_pages=0', ["'max_pages'"]),
        # values Python or SQLite cannot take must fail here, not in the crawl
        ('[[site]]\nid="a"\nportal="http://[::1/x"', ["id='a'", "portal", "not a valid URL", "IPv6"]),
        ('[[site]]\nid="a"\nportal="http://a.cn:99999/"', ["id='a'", "portal", "not a valid URL", "Port"]),
        ('[[site]]\nid="a"\nportal="http://a.cn:x/"', ["id='a'", "portal", "not a valid URL"]),
        ('[[site]]\nid="a"\nportal=["http://a.cn/", "http://a.cn:0/"]', ["id='a'", "portal", "port 0"]),
        ('[[site]]\nid="a"\nportal="http://a.cn/"\nmax_pages=100000000000000000000',
         ["id='a'", "'max_pages'", "1..10000000"]),
        ('[[site]]\nid="a"\nportal="http://a.cn/"\nmax_pages=10000001', ["id='a'", "'max_pages'"]),
        ('[[site]]\nid="a"\nportal="http://a.cn/"\napplicable_items=[true]', ["id='a'", "'applicable_items'"]),
        ('[[site]]\nid="a"\nportal="http://a.cn/"\nportl="x"', ["unknown field", "portl"]),
        ('[[site]]\nid="a"\nportal="http://a.cn/"\n[[site]]\nid="a"\nportal="http://b.cn/"',
         ["site #2", "duplicates"]),
    ],
)
def test_malformed_registry_is_rejected_with_file_site_and_field(text, fragments):
    with pytest.raises(RegistryError) as error:
        parse_registry(text, "r.toml")
    for fragment in fragments:
        assert fragment in str(error.value)


def test_unreadable_and_non_utf8_registry(tmp_path):
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(tmp_path / "missing.toml")
    bad = tmp_path / "gbk.toml"
    bad.write_bytes('[[site]]\nid="a"\nname="武汉"\nportal="http://a.cn/"'.encode("gbk"))
    with pytest.raises(RegistryError, match="not UTF-8"):
        load_registry(bad)


def test_port_and_max_pages_limits_are_inclusive():
    (site,) = parse_registry('[[site]]\nid="a"\nportal=["http://a.cn:1/", "https://a.cn:65535/x"]\n'
                             "max_pages=10000000", "r.toml")
    assert site.max_pages == 10_000_000 and site.portal[1] == "https://a.cn:65535/x"


@pytest.mark.parametrize("entry", [
    'portal = "http://[::1/x"',
    'portal = "http://host.example.edu.cn:99999/"',
    'portal = "http://host.example.edu.cn/"\nmax_pages = 100000000000000000000',
])
def test_cli_rejects_unusable_values_with_one_line(tmp_path, capsys, entry):
    from xxgk.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text(f'[[site]]\nid = "a"\n{entry}\n', encoding="utf-8")
    db = tmp_path / "x.db"
    for argv in (["registry", "validate"], ["schedule", "list", "--db", str(db)], ["crawl", "--db", str(db)]):
        assert main([*argv, "--registry", str(bad)]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "bad.toml" in err and "id='a'" in err, (argv, err)
    assert not db.exists()  # nothing started


def test_cli_rejects_bad_registry_before_crawling(tmp_path, capsys):
    from xxgk.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[[site]]\nid="a"\nportal="http://a.cn/"\nschedule="bogus"', encoding="utf-8")
    db = tmp_path / "x.db"
    assert main(["crawl", "--registry", str(bad), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "schedule" in err
    assert not db.exists()  # nothing started
