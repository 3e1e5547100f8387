// Side data on the app's objects that the app cannot see: a private class
// field added to the object (the base constructor returns the object it is
// given, so the subclass installs its field there). Invisible to
// util.inspect, Reflect.ownKeys, spreading, JSON and deepStrictEqual, and
// allowed on frozen objects. Cheaper than a WeakMap (docs/design.md): one
// hidden-class transition, no ephemeron table for the collector.

class ReturnsTarget {
  constructor(target: object) {
    return target;
  }
}

/**
 * Defines `key` as an own data property of `target`, as the first plain
 * assignment to it would have (writable, enumerable, configurable, in the
 * same place in the key order), bypassing an accessor of the prototype.
 * A class field is defined, not assigned, and through V8's inline caches:
 * some 15 ns, where Object.defineProperty takes about 250 ns and leaves
 * Node's code that reads the object slower (docs/design.md).
 */
export function createOwnPropertyDefiner(key: string): (target: object, value: unknown) => void {
  let pending: unknown;
  class OwnProperty extends ReturnsTarget {
    [key] = pending;
  }
  return (target, value) => {
    pending = value;
    try {
      new OwnProperty(target);
    } finally {
      pending = undefined;
    }
  };
}

/** One invisible slot per object. */
export interface Stamp<T> {
  get(target: object): T | undefined;
  /** Sets the slot; false when the object refuses it (a revoked Proxy, say): never throws. */
  set(target: object, value: T): boolean;
  /** Sets the slot of an object that has none yet (one just made): the cheaper path. */
  setNew(target: object, value: T): boolean;
}

/** A new kind of slot, with a private field of its own. */
export function createStamp<T>(): Stamp<T> {
  // The value the field starts with: set just before the constructor runs,
  // so that the field is defined once with it (no second write).
  let pending: T | undefined;
  class Slot extends ReturnsTarget {
    #value = pending;
    static read(target: object): T | undefined {
      return #value in target ? (target as Slot).#value : undefined;
    }
    static define(target: object, value: T): void {
      pending = value;
      try {
        new Slot(target);
      } finally {
        pending = undefined;
      }
    }
    static write(target: object, value: T): void {
      if (#value in target) (target as Slot).#value = value;
      else Slot.define(target, value);
    }
  }
  return {
    get: Slot.read,
    set(target, value) {
      try {
        Slot.write(target, value);
        return true;
      } catch {
        return false;
      }
    },
    setNew(target, value) {
      try {
        Slot.define(target, value);
        return true;
      } catch {
        return false;
      }
    },
  };
}
