// A bar chart of plays per hour, day, week or month: plain SVG drawn by Lit, no chart library
// (a bundle of a few KiB instead of one heavier than the card).

import { svg, type SVGTemplateResult } from "lit";
import type { Bar } from "./types";

const WIDTH = 300;
const HEIGHT = 80;
const GAP = 1;

/** The bars, scaled to the tallest; each with a tooltip ``label(bar)``. */
export function barChart(bars: readonly Bar[], label: (bar: Bar) => string): SVGTemplateResult {
  const tallest = Math.max(1, ...bars.map((bar) => bar.plays));
  const step = WIDTH / Math.max(1, bars.length);
  return svg`<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" preserveAspectRatio="none"
      role="img" aria-label=${bars.map(label).join("; ")}>
    ${bars.map((bar, index) => {
      const height = (bar.plays / tallest) * (HEIGHT - 2);
      return svg`<rect x=${index * step + GAP / 2} y=${HEIGHT - height}
          width=${Math.max(1, step - GAP)} height=${height} rx="1.5">
        <title>${label(bar)}</title></rect>`;
    })}
  </svg>`;
}
