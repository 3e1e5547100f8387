// profile.proto encoding (github.com/google/pprof/proto/profile.proto), gzipped
// as `go tool pprof`, Pyroscope and Grafana expect.
import { gzipSync } from 'node:zlib';
import { Function as PprofFunction, Label, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import type { StackFrame } from '../stacks/stack.js';

/** What a pprof body is served as (Go's net/http/pprof, and what Alloy checks for). */
export const PPROF = 'application/octet-stream';

export interface PprofSample {
  /** One value per sample type. */
  values: number[];
  /** Leaf first. */
  frames: readonly StackFrame[];
  labels: Readonly<Record<string, string>>;
}

export interface PprofInput {
  sampleTypes: ReadonlyArray<{ type: string; unit: string }>;
  periodType: { type: string; unit: string };
  period: number;
  samples: readonly PprofSample[];
  timeNanos?: bigint;
  durationNanos?: number;
  comments?: readonly string[];
}

/** Builds a profile.proto message with deduplicated functions and locations. */
export function encodePprof(input: PprofInput): Uint8Array {
  const strings = new StringTable();
  const functions = new Map<string, PprofFunction>();
  const locations = new Map<string, Location>();

  const functionId = (frame: StackFrame): number => {
    const key = frame.functionName + '\0' + frame.file;
    let fn = functions.get(key);
    if (fn === undefined) {
      fn = new PprofFunction({
        id: functions.size + 1,
        name: strings.dedup(frame.functionName),
        systemName: strings.dedup(frame.functionName),
        filename: strings.dedup(frame.file),
      });
      functions.set(key, fn);
    }
    return Number(fn.id);
  };

  const locationId = (frame: StackFrame): number => {
    const fnId = functionId(frame);
    const key = `${fnId}:${frame.line}:${frame.column}`;
    let location = locations.get(key);
    if (location === undefined) {
      location = new Location({
        id: locations.size + 1,
        line: [new Line({ functionId: fnId, line: frame.line, column: frame.column })],
      });
      locations.set(key, location);
    }
    return Number(location.id);
  };

  const samples = input.samples.map(
    (sample) =>
      new Sample({
        locationId: sample.frames.map(locationId),
        value: sample.values,
        label: Object.entries(sample.labels).map(
          ([key, value]) => new Label({ key: strings.dedup(key), str: strings.dedup(value) }),
        ),
      }),
  );

  const profile = new Profile({
    sampleType: input.sampleTypes.map((t) => new ValueType({ type: strings.dedup(t.type), unit: strings.dedup(t.unit) })),
    periodType: new ValueType({ type: strings.dedup(input.periodType.type), unit: strings.dedup(input.periodType.unit) }),
    period: input.period,
    sample: samples,
    location: [...locations.values()],
    function: [...functions.values()],
    timeNanos: input.timeNanos ?? BigInt(Date.now()) * 1_000_000n,
    durationNanos: input.durationNanos ?? 0,
    comment: (input.comments ?? []).map((c) => strings.dedup(c)),
    stringTable: strings,
  });
  return gzipSync(profile.encode());
}
