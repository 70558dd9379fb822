// Chart helpers with no state of their own: EMA smoothing, hover values, wheel zoom and pan.

// Exponential moving average with the start-up bias removed (TensorBoard's smoothing):
// the first points are not dragged towards zero. Non-finite points are passed through.
export function smooth(values, weight) {
  if (!(weight > 0)) return values;
  const out = new Array(values.length);
  let last = 0, count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) { out[i] = v; continue; }
    last = last * weight + (1 - weight) * v;
    count += 1;
    out[i] = last / (1 - Math.pow(weight, count));
  }
  return out;
}

// The value nearest to data index idx that is not null (runs do not share x values).
export function nearestValue(data, x, idx) {
  if (data[idx] !== null && data[idx] !== undefined) return data[idx];
  for (let d = 1; d < data.length; d++) {
    const left = idx - d, right = idx + d;
    const l = left >= 0 ? data[left] : undefined, r = right < data.length ? data[right] : undefined;
    const hasL = l !== null && l !== undefined, hasR = r !== null && r !== undefined;
    if (hasL && hasR) return Math.abs(x[idx] - x[left]) <= Math.abs(x[right] - x[idx]) ? l : r;
    if (hasL) return l;
    if (hasR) return r;
    if (left < 0 && right >= data.length) break;
  }
  return null;
}

export function formatLegend(v) {
  if (v === null || v === undefined) return "--";
  return Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(4) : Number(v.toPrecision(6)).toString();
}

// Wheel zoom at the cursor and shift+drag pan on the x axis.
export function wheelAndPan() {
  return {
    hooks: {
      ready: (u) => {
        const over = u.over;
        over.addEventListener("wheel", (event) => {
          event.preventDefault();
          const { min, max } = u.scales.x;
          if (min === null || max === null) return;
          const at = u.posToVal(event.offsetX, "x");
          const factor = event.deltaY < 0 ? 0.8 : 1.25;
          u.setScale("x", { min: at - (at - min) * factor, max: at + (max - at) * factor });
        }, { passive: false });
        over.addEventListener("mousedown", (event) => {
          if (!event.shiftKey) return;
          event.preventDefault();
          event.stopPropagation();
          const startX = event.clientX, { min, max } = u.scales.x;
          const perPixel = (max - min) / u.bbox.width * devicePixelRatio;
          const move = (e) => {
            const shift = (e.clientX - startX) * perPixel;
            u.setScale("x", { min: min - shift, max: max - shift });
          };
          const up = () => { removeEventListener("mousemove", move); removeEventListener("mouseup", up); };
          addEventListener("mousemove", move);
          addEventListener("mouseup", up);
        }, true);
      },
    },
  };
}
