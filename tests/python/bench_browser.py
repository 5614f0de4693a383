"""A browser's view of `pinfer bench`'s report.html, for the tests that write one: Debian's
headless chromium (scripts/setup.sh --test installs it) renders the page, and the page must
come out as a picture, not a blank sheet, with every chart drawn at a real size.

No test here: the tests that make reports call check_report_renders()."""
import html
import json
import os
import re
import shutil
import subprocess

import pytest

WINDOW = (1200, 3000)
CHART_KINDS = ("throughput", "cdf", "heatmap", "locality")

# Put into a copy of the page (never into the report itself, which runs no script): each
# chart's rendered box and the page's width, written into the DOM that --dump-dom prints.
PROBE = """
<script>
(function () {
  var out = {charts: [], scroll_width: document.documentElement.scrollWidth};
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var r = svg.getBoundingClientRect();
    out.charts.push({cls: svg.getAttribute("class"), width: r.width, height: r.height,
                     top: r.top + window.scrollY, left: r.left});
  });
  var pre = document.createElement("pre");
  pre.id = "pf-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


def chromium():
    """The chromium binary, or a failure that says how to get it: a missing browser is never
    a silent skip."""
    path = shutil.which("chromium")
    if not path:
        pytest.fail("chromium is not installed: the report's rendering cannot be checked "
                    "(bash scripts/setup.sh --test installs it; or apt-get install chromium)")
    return path


def run_chromium(tmp_path, args, url, what):
    """Run headless chromium on url with a profile of its own under tmp_path; its result."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-extensions", "--disable-background-networking",
           "--user-data-dir=%s" % profile,
           "--window-size=%d,%d" % WINDOW] + args + [url]
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
               XDG_CACHE_HOME=str(tmp_path / "xdg-cache"))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, "chromium (%s) exited %d:\n%s" % (
        what, proc.returncode, proc.stderr[-3000:])
    return proc


def screenshot(html_path, tmp_path):
    """A PNG of the page's first WINDOW pixels; its path."""
    png = tmp_path / "report.png"
    run_chromium(tmp_path, ["--run-all-compositor-stages-before-draw",
                            "--screenshot=%s" % png],
                 "file://%s" % os.path.abspath(html_path), "screenshot")
    assert png.exists() and png.stat().st_size > 0, "chromium wrote no screenshot"
    return png


def rendered_charts(html_path, tmp_path):
    """{"charts": [{cls, width, height, top, left}], "scroll_width"} as chromium laid the
    page out, read through a copy of the page with PROBE injected."""
    text = open(html_path, encoding="utf-8").read()
    assert "</body>" in text, "the page has no </body>"
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    proc = run_chromium(tmp_path, ["--dump-dom", "--virtual-time-budget=5000"],
                        "file://%s" % probe, "dump-dom")
    match = re.search(r'<pre id="pf-probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, "the probe did not run in chromium; its DOM:\n" + proc.stdout[-2000:]
    return json.loads(html.unescape(match.group(1)))


def hex_colours(text):
    """The fill colours of the throughput chart's bars in the page's source."""
    chart = re.search(r'<svg class="chart throughput".*?</svg>', text, re.S)
    if not chart:
        return []
    return sorted(set(re.findall(r'<rect [^>]*fill="#([0-9a-f]{6})"', chart.group(0))))


def check_report_renders(html_path, tmp_path, kinds=CHART_KINDS):
    """Render html_path in headless chromium and check that (a) the screenshot is a picture:
    many colours, a good share of pixels that are not white, the throughput bars' colours
    on it; (b) every chart of the page (an svg of class "chart KIND") is laid out with a
    width and height above zero, each of `kinds` at least once, no chart wider than the
    window and the page not wider either (nothing to scroll sideways)."""
    from PIL import Image

    tmp_path = tmp_path / "browser"
    tmp_path.mkdir(exist_ok=True)
    source = open(html_path, encoding="utf-8").read()

    png = screenshot(html_path, tmp_path)
    with Image.open(png) as img:
        rgb = img.convert("RGB")
        assert rgb.size == WINDOW, "screenshot of %s, want %s" % (rgb.size, WINDOW)
        colours = rgb.getcolors(maxcolors=1 << 24)
        width, height = rgb.size
        non_white = sum(n for n, c in colours if min(c) < 245)
        assert len(colours) >= 16, "a blank page: %d colours" % len(colours)
        assert non_white >= 0.02 * width * height, (
            "a blank page: %d of %d pixels not white" % (non_white, width * height))
        present = {"%02x%02x%02x" % c for n, c in colours if n >= 20}
        for colour in hex_colours(source):
            assert colour in present, "the bar colour #%s is not on the screenshot" % colour

    layout = rendered_charts(html_path, tmp_path)
    charts = layout["charts"]
    assert len(charts) == source.count('<svg class="chart '), (
        "the page holds %d charts, chromium laid out %d" % (
            source.count('<svg class="chart '), len(charts)))
    for chart in charts:
        assert chart["width"] > 0 and chart["height"] > 0, "a chart drawn at no size: %r" % chart
        assert chart["left"] >= 0 and chart["left"] + chart["width"] <= WINDOW[0], (
            "a chart out of the window: %r" % chart)
    seen = {k for c in charts for k in c["cls"].split() if k != "chart"}
    for kind in kinds:
        assert kind in seen, "no %s chart in the rendered page (charts: %s)" % (
            kind, sorted(seen))
    assert layout["scroll_width"] <= WINDOW[0], (
        "the page is %dpx wide in a %dpx window" % (layout["scroll_width"], WINDOW[0]))
    return layout
