// Local time as the original printed it: YYYY-MM-DD HH:MM:SS. Cached per second because every
// log line and every TIME reply needs it.

let cachedSecond = -1;
let cachedText = '';

const pad = (n: number): string => (n < 10 ? '0' + n : String(n));

export function formatLocalTime(date: Date): string {
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

export function localTimestamp(now = Date.now()): string {
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedText = formatLocalTime(new Date(second * 1000));
  }
  return cachedText;
}
