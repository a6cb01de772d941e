"""Pictures of every terminal screen and form at 80×24 and 120×40, for the README and docs/tui.md.

Run against a running agent (`make demo` in another terminal, or `beerflow-edge demo --dir D`):

    .venv/bin/python scripts/tui_snapshots.py demo-venue/api.sock docs/img/tui

Writes `<screen>-<cols>x<rows>.svg` and, with rsvg-convert (librsvg2-bin), a `.png` beside it:
look at the PNGs before committing them."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys

from tui.app import SCREENS, KitchenApp
from tui.forms import _Form

SIZES = ((80, 24), (120, 40))
FORMS = (("alarms", "a", "acknowledge"), ("alarms", "c", "corrective"), ("haccp", "p", "probe"))


async def shoot(socket: str, out: str, size: tuple[int, int]) -> list[str]:
    names = []
    app = KitchenApp(socket, "en", "C", poll_s=1.0, bell_every_s=3600)
    async with app.run_test(size=size) as pilot:
        for _ in range(200):
            if app.snapshot is not None and app.first_render_s is not None:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # the history route fills the sparklines
        suffix = f"{size[0]}x{size[1]}"
        for i, screen in enumerate(SCREENS):
            await pilot.press(str(i + 1))
            await pilot.pause()
            names.append(app.save_screenshot(f"{screen}-{suffix}.svg", path=out))
        for screen, key, name in FORMS:
            await pilot.press(str(SCREENS.index(screen) + 1), key)
            await pilot.pause()
            if isinstance(app.screen, _Form):
                names.append(app.save_screenshot(f"form-{name}-{suffix}.svg", path=out))
                await pilot.press("escape")
                await pilot.pause()
        await pilot.press("1", "l")
        await pilot.pause()
        names.append(app.save_screenshot(f"overview-it-{suffix}.svg", path=out))
    return names


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    socket, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    names = [n for size in SIZES for n in asyncio.run(shoot(socket, out, size))]
    rsvg = shutil.which("rsvg-convert")
    for svg in names:
        if rsvg:
            png = svg.removesuffix(".svg") + ".png"
            subprocess.run([rsvg, "-w", "1200", svg, "-o", png], check=True)
        print(svg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
