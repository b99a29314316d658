"""Bulk registry tools: ``xxgk registry import FILE.csv`` and ``xxgk registry check``.

Import: row-numbered reports of duplicates and bad URLs, all-or-nothing unless
``--skip-bad``, merges that keep the registry's comments, GB18030 CSVs from Excel.
Check: every portal through the simulated web's proxy, classified with the crawler's
rules, recorded in ``registry_checks``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from schedules.bulk import import_csv, merge_registry_text, toml_value, url_problem
from schedules.registry import RegistryError, load_registry, parse_registry

ROOT = Path(__file__).resolve().parent.parent

REGISTRY = """\
# Our registry: this comment must survive imports.

[[site]]
id = "wust"
name = "武汉科技大学"
portal = "https://xxgk.wust.edu.cn/main.htm"
allowed_domains = ["xxgk.wust.edu.cn"]
schedule = "0 3 * * 1"
kind = "本科"
applicable_items = [1, 2, 3]

# The next one has a comment of its own.
[[site]]
id = "zjut"
name = "浙江工业大学"
portal = "http://info.zjut.edu.cn/"
"""


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return write(tmp_path / "sites.toml", REGISTRY)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xxgk.distributed_cli", *args], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120)


def test_good_csv_merges_adds_and_updates_keeping_comments(tmp_path, registry):
    csv_path = write(tmp_path / "new.csv", (
        "id,name,portal,allowed_domains,schedule,render\n"
        "pku,北京大学,http://xxgk.pku.edu.cn/,xxgk.pku.edu.cn; pku.edu.cn,0 2 * * 1,auto\n"
        "thu,清华大学,https://xxgk.tsinghua.edu.cn/ https://www.tsinghua.edu.cn/xxgk/,,,never\n"
        "wust,武汉科技大学,https://xxgk.wust.edu.cn/main.htm,,,never\n"  # an update: render
        "zjut,浙江工业大学,http://info.zjut.edu.cn/,,,\n"                   # unchanged
    ))
    report = import_csv(csv_path, registry)
    assert not report.fatal and report.written
    assert report.added == ["pku", "thu"] and report.updated == ["wust"] and report.unchanged == ["zjut"]
    text = registry.read_text(encoding="utf-8")
    assert "# Our registry: this comment must survive imports." in text
    assert "# The next one has a comment of its own." in text
    sites = {s.id: s for s in load_registry(registry)}
    assert list(sites) == ["wust", "zjut", "pku", "thu"]
    assert sites["wust"].render == "never" and sites["wust"].applicable_items == (1, 2, 3)  # kept
    assert sites["pku"].allowed_domains == ("xxgk.pku.edu.cn", "pku.edu.cn")
    assert sites["pku"].schedule == "0 2 * * 1"
    assert sites["thu"].portal == ("https://xxgk.tsinghua.edu.cn/", "https://www.tsinghua.edu.cn/xxgk/")
    assert (tmp_path / "sites.toml.bak").read_text(encoding="utf-8") == REGISTRY
    again = import_csv(csv_path, registry)  # idempotent
    assert again.added == [] and again.updated == [] and len(again.unchanged) == 4


def test_bad_rows_reject_the_whole_import_with_row_numbers(tmp_path, registry):
    csv_path = write(tmp_path / "bad.csv", (
        "id,name,portal,schedule\n"
        "pku,北京大学,http://xxgk.pku.edu.cn/,\n"          # row 2: fine
        "thu,清华大学,xxgk.tsinghua.edu.cn,\n"             # row 3: no scheme
        "pku,北大,http://other.pku.edu.cn/,\n"              # row 4: duplicate id
        "pkux,北大X,http://XXGK.pku.edu.cn,\n"              # row 5: duplicate portal (same URL)
        "copy,浙工大,http://info.zjut.edu.cn,\n"            # row 6: portal already in the registry
        "ftp,F,ftp://files.example.edu.cn/,\n"             # row 7: not http(s)
        "odd,O,http://bad_host!/,\n"                       # row 8: not a host name
        "cron,C,http://c.edu.cn/,61 * * * *\n"             # row 9: bad cron
        "Bad Id,B,http://b.edu.cn/,\n"                     # row 10: bad id
    ))
    report = import_csv(csv_path, registry)
    assert report.fatal and not report.written
    assert registry.read_text(encoding="utf-8") == REGISTRY
    rows = {row: message for row, message in report.errors}
    assert sorted(rows) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "did you mean 'http://xxgk.tsinghua.edu.cn'" in rows[3]
    assert "duplicate id 'pku'" in rows[4] and "row 2" in rows[4]
    assert "duplicate portal" in rows[5] and "row 2" in rows[5]
    assert "registry has it as 'zjut'" in rows[6]
    assert "not an http(s) URL" in rows[7]
    assert "not a valid domain name" in rows[8]
    assert "cron" in rows[9]
    assert "id" in rows[10]
    printed = "\n".join(report.lines())
    assert f"{csv_path}: row 3:" in printed and "import rejected" in printed


def test_skip_bad_imports_the_good_rows(tmp_path, registry):
    csv_path = write(tmp_path / "mixed.csv", (
        "id,name,portal\n"
        "pku,北京大学,http://xxgk.pku.edu.cn/\n"
        "thu,清华大学,xxgk.tsinghua.edu.cn\n"
        "pku,重复,http://x.pku.edu.cn/\n"
        "fdu,复旦大学,http://xxgk.fudan.edu.cn/\n"
    ))
    report = import_csv(csv_path, registry, skip_bad=True)
    assert not report.fatal and report.written
    assert report.added == ["pku", "fdu"] and report.skipped_rows == [3, 4]
    assert [s.id for s in load_registry(registry)] == ["wust", "zjut", "pku", "fdu"]


def test_excel_gb18030_csv_and_new_registry_file(tmp_path):
    csv_path = write(tmp_path / "excel.csv", "ID,Name,Portal,Kind\r\nhrbcu,哈尔滨城市职业学院,http://www.hrbcu.edu.cn/,专科\r\n",
                     encoding="gb18030")
    target = tmp_path / "fresh.toml"
    report = import_csv(csv_path, target)
    assert report.added == ["hrbcu"] and report.written
    (site,) = load_registry(target)
    assert site.name == "哈尔滨城市职业学院" and site.kind == "专科"


def test_missing_columns_are_fatal(tmp_path, registry):
    report = import_csv(write(tmp_path / "x.csv", "id,name\nx,X\n"), registry)
    assert report.fatal and "missing column(s) portal" in report.errors[0][1]


def test_toml_writer_round_trips_awkward_strings():
    raw = {"id": "x", "name": '引号"与\\反斜杠\t和换行\n', "portal": ["http://a.edu.cn/?q=1&b=2"],
           "max_pages": 5, "allow_private": False}
    text = merge_registry_text("", {"x": raw})
    assert tomllib.loads(text)["site"][0] == raw
    assert parse_registry(text)[0].name == raw["name"].strip()
    assert toml_value([1, "a"]) == '[1, "a"]'


@pytest.mark.parametrize("url, ok", [
    ("http://xxgk.pku.edu.cn/", True), ("https://信息公开.北京大学.cn/", True),
    ("http://127.0.0.1:8080/x", True), ("http://xxgk.pku.edu.cn:99999/", False),
    ("xxgk.pku.edu.cn", False), ("http:///path", False), ("http://nodot/", False),
    ("http://bad host.edu.cn/", False), ("mailto:a@b.cn", False),
    ("http://[::1/x", False), ("http://xxgk.pku.edu.cn:x/", False), ("http://xxgk.pku.edu.cn:0/", False),
])
def test_url_problem(url, ok):
    assert (url_problem(url) is None) is ok


def test_bad_ipv6_and_port_urls_are_row_errors(tmp_path, registry):
    csv_path = write(tmp_path / "v6.csv", (
        "id,name,portal\n"
        "pku,北京大学,http://xxgk.pku.edu.cn/\n"
        "v6,坏地址,http://[::1/x\n"                        # row 3: urlsplit raises
        "port,坏端口,http://xxgk.port.edu.cn:99999/\n"     # row 4: .port raises
    ))
    report = import_csv(csv_path, registry)
    assert report.fatal and registry.read_text(encoding="utf-8") == REGISTRY
    rows = dict(report.errors)
    assert sorted(rows) == [3, 4]
    assert "Invalid IPv6 URL" in rows[3] and "Port out of range" in rows[4]
    report = import_csv(csv_path, registry, skip_bad=True)
    assert report.added == ["pku"] and report.skipped_rows == [3, 4]


def test_oversized_csv_cell_rejects_the_file_with_its_row(tmp_path, registry):
    # An unclosed quote makes one cell of the rest of the file; csv stops at 128 KB.
    csv_path = write(tmp_path / "huge.csv", (
        "id,name,portal\n"
        "pku,北京大学,http://xxgk.pku.edu.cn/\n"
        'thu,"清华' + "x" * 200_000 + ",http://xxgk.tsinghua.edu.cn/\n"
    ))
    for skip_bad in (False, True):  # no row of it can be trusted
        report = import_csv(csv_path, registry, skip_bad=skip_bad)
        assert report.fatal and not report.written and report.errors[0][0] == 3
        assert "not readable as CSV" in report.errors[0][1] and "field limit" in report.errors[0][1]
        printed = report.lines()
        assert printed[0].startswith(f"{csv_path}: row 3:") and "--skip-bad" not in printed[-1]
    assert registry.read_text(encoding="utf-8") == REGISTRY


def test_unreadable_registry_is_a_registry_error(tmp_path):
    csv_path = write(tmp_path / "good.csv", "id,name,portal\npku,北京大学,http://xxgk.pku.edu.cn/\n")
    gbk = write(tmp_path / "gbk.toml", REGISTRY, encoding="gbk")
    with pytest.raises(RegistryError, match="gbk.toml: registry is not UTF-8"):
        import_csv(csv_path, gbk)
    assert gbk.read_bytes() == REGISTRY.encode("gbk")
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(RegistryError, match="folder.toml: cannot read registry"):
        import_csv(csv_path, folder)
    result = cli("registry", "import", str(csv_path), "--registry", str(gbk))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "gbk.toml: registry is not UTF-8" in result.stderr


@pytest.mark.parametrize("failing", ["backup", "temporary", "replace"])
def test_unwritable_registry_is_left_unchanged(tmp_path, registry, monkeypatch, failing):
    csv_path = write(tmp_path / "good.csv", "id,name,portal\npku,北京大学,http://xxgk.pku.edu.cn/\n")
    denied = PermissionError(13, "Permission denied")
    write_bytes, write_text = Path.write_bytes, Path.write_text

    def fake_write_bytes(self, data):
        if failing == "backup" and self.name.endswith(".bak"):
            raise denied
        return write_bytes(self, data)

    def fake_write_text(self, data, *args, **kwargs):
        if failing == "temporary" and self.name.endswith(".tmp"):
            write_text(self, data[:10], *args, **kwargs)  # a partial file, then the disk is "full"
            raise OSError(28, "No space left on device")
        return write_text(self, data, *args, **kwargs)

    def fake_replace(src, dst):
        raise denied

    monkeypatch.setattr(Path, "write_bytes", fake_write_bytes)
    monkeypatch.setattr(Path, "write_text", fake_write_text)
    if failing == "replace":
        monkeypatch.setattr(os, "replace", fake_replace)
    with pytest.raises(RegistryError, match="sites.toml: cannot write registry: .*; registry unchanged"):
        import_csv(csv_path, registry)
    assert registry.read_text(encoding="utf-8") == REGISTRY
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_read_only_registry_directory(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    registry = write(folder / "sites.toml", REGISTRY)
    csv_path = write(tmp_path / "good.csv", "id,name,portal\npku,北京大学,http://xxgk.pku.edu.cn/\n")
    if os.geteuid() == 0:  # root writes through permissions: a read-only bind mount instead
        mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
        if mounted.returncode != 0:
            pytest.skip(f"root without mount: {mounted.stderr.strip()}")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        restore = ["umount", "-l", str(folder)]
    else:
        folder.chmod(0o555)
        restore = ["chmod", "755", str(folder)]
    try:
        with pytest.raises(RegistryError, match="cannot write registry"):
            import_csv(csv_path, registry)
    finally:
        subprocess.run(restore, capture_output=True)
    assert registry.read_text(encoding="utf-8") == REGISTRY


def test_cli_import_exit_codes(tmp_path, registry):
    good = write(tmp_path / "good.csv", "id,name,portal\npku,北京大学,http://xxgk.pku.edu.cn/\n")
    bad = write(tmp_path / "bad.csv", "id,name,portal\npku,北京大学,xxgk.pku.edu.cn\n")
    result = cli("registry", "import", str(bad), "--registry", str(registry))
    assert result.returncode == 2 and "row 2" in result.stdout
    result = cli("registry", "import", str(good), "--registry", str(registry), "--dry-run")
    assert result.returncode == 0 and "would merge" in result.stdout
    assert registry.read_text(encoding="utf-8") == REGISTRY
    result = cli("registry", "import", str(good), "--registry", str(registry))
    assert result.returncode == 0 and "1 added" in result.stdout
    assert "pku" in {s.id for s in load_registry(registry)}


def test_check_records_every_portal_through_the_proxy(tmp_path):
    from archive.db import open_db
    from simweb import SimWeb

    registry = write(tmp_path / "sim.toml", """
[[site]]
id = "webplus"
name = "模拟理工大学"
portal = "http://xxgk.webplus-univ.edu.cn/main.htm"

[[site]]
id = "helpers"
name = "Broken portals"
portal = ["http://nxdomain.example-univ.edu.cn/", "http://refused.example-univ.edu.cn/",
          "http://slow.example-univ.edu.cn/", "https://tls-bad.example-univ.edu.cn/",
          "http://www.trs-univ.edu.cn/no-such-page.html"]
""")
    db_path = tmp_path / "archive.db"
    with SimWeb(port=0, day=1, delay_scale=0.2) as web:  # the slow host answers after 6 s
        env = {"http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": ""}
        result = cli("registry", "check", "--registry", str(registry), "--db", str(db_path),
                     "--timeout", "2", env=env)
        log = web.request_log
    assert result.returncode == 1, result.stdout + result.stderr  # some portals fail
    assert "1 of 6 portal URL(s) answer" in result.stdout
    db = open_db(db_path)
    rows = {url: (state, ok, method, via) for url, state, ok, method, via in db.execute(
        "SELECT url, state, ok, method, via_proxy FROM registry_checks")}
    assert rows == {
        "http://xxgk.webplus-univ.edu.cn/main.htm": ("ok", 1, "HEAD", 1),
        "http://nxdomain.example-univ.edu.cn/": ("dns_error", 0, "GET", 1),
        "http://refused.example-univ.edu.cn/": ("connection_error", 0, "GET", 1),
        "http://slow.example-univ.edu.cn/": ("timeout", 0, "HEAD", 1),
        "https://tls-bad.example-univ.edu.cn/": ("tls_error", 0, "GET", 1),
        "http://www.trs-univ.edu.cn/no-such-page.html": ("not_found", 0, "GET", 1),
    }
    assert ("HEAD", "http://xxgk.webplus-univ.edu.cn/main.htm", 200) in log
    assert db.execute("SELECT COUNT(*) FROM sites WHERE id IN ('webplus', 'helpers')").fetchone()[0] == 2
