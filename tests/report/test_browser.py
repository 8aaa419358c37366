"""report.html in a real browser: headless Chromium loads it, decodes every embedded chart,
and paints a page that is not blank.

Skipped when no Chromium is on PATH (install it with ``apt-get install -y chromium``).
"""
import shutil
import subprocess

import pytest
from matplotlib import image as mpimg

BROWSER = next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))),
               None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium, chromium-browser or google-chrome on PATH")

# Appended to a copy of the page: once everything has loaded, record how many images decoded.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const decoded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-decoded", decoded + "/" + images.length);
});
</script>
</body>"""


def chromium(profile, *args):
    command = [BROWSER, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={profile}",
               "--virtual-time-budget=10000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_every_chart_decodes_in_chromium(full_report, tmp_path):
    run, report, _ = full_report
    probe = tmp_path / "probe.html"
    probe.write_text((run / "report.html").read_text().replace("</body>", PROBE))
    result = chromium(tmp_path / "profile", "--dump-dom", probe.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    n = len(report.charts)
    assert f'data-decoded="{n}/{n}"' in result.stdout
    assert result.stdout.count('<table class="kpi">') >= 5


def test_screenshot_is_not_blank(full_report, tmp_path):
    run, _, _ = full_report
    shot = tmp_path / "page.png"
    result = chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000",
                      (run / "report.html").as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    assert (pixels[..., :3] < 0.5).mean() > 0.005  # text and tables drew dark pixels on the white page
