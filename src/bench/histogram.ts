// The one histogram shape of `tcpool bench`: 1 µs to 120 s at 3 significant digits. The client
// threads and the coordinator must build the same shape for their histograms to add up.
import * as hdr from 'hdr-histogram-js';

export type Histogram = ReturnType<typeof hdr.build>;

export function newHistogram(): Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

export const encodeHistogram = (h: Histogram): string => hdr.encodeIntoCompressedBase64(h);
export const decodeHistogram = (text: string): Histogram => hdr.decodeFromCompressedBase64(text);
