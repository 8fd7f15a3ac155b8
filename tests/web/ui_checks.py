"""What every page must pass in the browser (issue 17): no sideways scrolling, no word broken inside a
table cell, no serious or critical axe-core violation, a focus ring of at least 3:1, and a screenshot
saved as a test artifact (``test-artifacts/screenshots/<page>-<width>.png``).

axe-core comes from its npm package in ``.test-tools`` (``scripts/test.sh`` installs it). It is injected
with ``page.evaluate`` of its source: DevTools evaluation is not subject to the page's CSP, so the app
keeps its real ``script-src 'self'`` while it is checked.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from tests.web.conftest import SCREENSHOTS

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / ".test-tools" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)
HEIGHTS = {1280: 900, 390: 844}


@functools.cache
def axe_source() -> str:
    if not AXE.is_file():
        raise RuntimeError(f"axe-core is missing ({AXE}): run `npm install --prefix .test-tools axe-core@4`")
    return AXE.read_text(encoding="utf-8")


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations of the given impacts on the page as it is now, one line each."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations'], runOnly: {type: 'tag',
              values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || ''))}));
        }"""
    )
    return [f"{v['impact']} {v['id']}: {v['help']} @ {v['nodes']}" for v in result if v["impact"] in impacts]


def overflow(page: Any) -> int:
    """How far the document scrolls sideways (0 when it fits the viewport)."""
    return int(page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth"))


BROKEN_WORDS_JS = """(selector) => {
  const bad = [];
  for (const cell of document.querySelectorAll(selector)) {
    const box = cell.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;  // hidden, or visually hidden (a header read aloud)
    const cs = getComputedStyle(cell);
    if (cs.wordBreak === 'break-all' || cs.wordBreak === 'break-word' || cs.overflowWrap === 'anywhere') {
      bad.push(`style ${cs.wordBreak}/${cs.overflowWrap} on ${cell.textContent.trim().slice(0, 40)}`);
    }
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement.getBoundingClientRect();
      if (parent.width <= 1) continue;
      const re = /\\S+/g;
      for (let m = re.exec(node.data); m; m = re.exec(node.data)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const rects = Array.from(range.getClientRects()).filter(r => r.width > 0);
        const lines = new Set(rects.map(r => Math.round(r.bottom)));
        if (lines.size > 1) bad.push(`"${m[0]}" on ${lines.size} lines`);
      }
    }
  }
  return bad;
}"""


def broken_words(page: Any, selector: str = "main td") -> list[str]:
    """Words rendered across two lines inside a cell, and cells styled to allow that."""
    return list(page.evaluate(BROKEN_WORDS_JS, selector))


CONTRAST_JS = """(sel) => {
  const el = document.querySelector(sel);
  el.focus();
  const cs = getComputedStyle(el);
  const parse = c => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  let bg = null;
  for (let n = el.parentElement; n; n = n.parentElement) {
    const b = getComputedStyle(n).backgroundColor;
    if (b && !b.startsWith('rgba(0, 0, 0, 0)') && b !== 'transparent') { bg = b; break; }
  }
  return {ring: cs.outlineColor, width: cs.outlineWidth, style: cs.outlineStyle, bg: bg || 'rgb(255, 255, 255)',
          visible: el.matches(':focus-visible')};
}"""


def _luminance(rgb: list[float]) -> float:
    def chan(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (chan(x) for x in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[float], b: list[float]) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def focus_ring(page: Any, selector: str) -> tuple[float, float]:
    """(contrast of the focus outline against the background around the element, outline width in px),
    after focusing it from the keyboard."""
    import re

    page.keyboard.press("Shift")  # keyboard modality, so :focus-visible applies to what we focus
    found = page.evaluate(CONTRAST_JS, selector)
    nums = [[float(x) for x in re.findall(r"[\d.]+", found[k])[:3]] for k in ("ring", "bg")]
    return contrast(nums[0], nums[1]), float(found["width"].removesuffix("px") or 0)


def shoot(page: Any, name: str, width: int, *, full_page: bool = True) -> Path:
    """Save ``<name>-<width>.png`` (the whole page; the viewport when a modal dialog is open)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
