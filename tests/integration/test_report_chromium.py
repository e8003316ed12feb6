"""The HTML report and CSV of a real run; the report rendered by headless Chromium: tables present, every
image decoded."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.brightness import install_brightness_tagger
from tests.helpers.datasets import PostSpec, make_dataset
from tests.helpers.runs import ShowdownRun

#: Appended to a copy of the report (the report itself has no script): after load, it records on
#: <body> how many images there are and whether every one decoded (naturalWidth > 0).
CHECK_IMAGES = """
<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.dataset.images = String(images.length);
  document.body.dataset.decoded = String(images.filter((i) => i.complete && i.naturalWidth > 0).length);
});
</script>
"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed here (apt-get install -y chromium; .ci/run installs it)")


def dump_dom(page: Path, profile: Path) -> str:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_renders_tables_and_plots_in_chromium(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    db = install_brightness_tagger(pytester)
    make_dataset(db, [PostSpec(id=299, rating="g", image=b"not an image")])  # adds one corrupt post
    result, _ = run_showdown(
        "--tagger", "bright,control", "--showdown-db", str(db),
        "--showdown-report", "report.html", "--showdown-csv", "posts.csv",
    )  # fmt: skip
    assert result.ret == 1  # the corrupt post fails its own items
    result.stdout.fnmatch_lines(["written: posts.csv", "written: report.html"])
    with (pytester.path / "posts.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 18  # the errored post has its row too
    assert {r["tagger"] for r in rows} == {"bright", "control"}
    report = pytester.path / "report.html"
    checked = pytester.path / "checked.html"
    checked.write_text(report.read_text(encoding="utf-8").replace("</body>", CHECK_IMAGES + "</body>"))

    dom = dump_dom(checked, pytester.path / "chromium-profile")

    body = re.search(r'<body data-images="(\d+)" data-decoded="(\d+)"', dom)
    assert body is not None, dom[:2000]
    # 5 plots, and a thumbnail for each of bright's 5 worst posts; the control is perfect: none.
    assert body.groups() == ("10", "10")
    errors = dom[dom.index('<table class="errors">') :]
    errors = errors[: errors.index("</table>")]
    reasons = re.findall(r"<tr><td>([^<]*)</td><td>post299-g</td><td>([^<]*)</td></tr>", errors)
    assert [tagger for tagger, _ in reasons] == ["bright", "control"]  # the control decodes too
    assert all("cannot decode the image" in reason for _, reason in reasons), reasons
    worst = dom[dom.index("<h3>control</h3>") :]
    assert worst[: worst.index("<h3>", 4)].count('class="post"') == 0
    summary = dom[dom.index('<table class="summary">') :]
    summary = summary[: summary.index("</table>")]
    assert re.findall(r"<tr><td>([^<]*)</td>", summary) == ["control", "bright"]
    assert "<td>1.000</td>" in summary
    by_rating = dom[dom.index('<table class="by-rating">') :]
    assert len(re.findall(r"<tr><td>bright</td>", by_rating[: by_rating.index("</table>")])) == 4
    assert "&gt;_&lt;" in dom  # the post's meta tag, escaped, shown as missed
