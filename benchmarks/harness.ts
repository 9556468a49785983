// A tiny micro-benchmark harness: warm up, then time batches until ~0.5 s has passed; report the
// best batch's ns/op (least disturbed by GC and the other core's load).
export function bench(
  name: string,
  ops: number,
  fn: () => void,
): { name: string; nsPerOp: number } {
  for (let i = 0; i < 3; i++) fn();
  let best = Infinity;
  const until = performance.now() + 500;
  while (performance.now() < until) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, ((performance.now() - t0) * 1e6) / ops);
  }
  console.log(`${name.padEnd(56)} ${best.toFixed(1).padStart(8)} ns/op`);
  return { name, nsPerOp: best };
}
