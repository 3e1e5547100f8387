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

/** One invisible slot per object. */
export interface Stamp<T> {
  get(target: object): T | undefined;
  /** Sets the slot; false when the object refuses it (a revoked Proxy, say): never throws. */
  set(target: object, value: T): boolean;
}

/** A new kind of slot, with a private field of its own. */
export function createStamp<T>(): Stamp<T> {
  class Slot extends ReturnsTarget {
    #value: T;
    constructor(target: object, value: T) {
      super(target);
      this.#value = value;
    }
    static read(target: object): T | undefined {
      return #value in target ? (target as Slot).#value : undefined;
    }
    static write(target: object, value: T): void {
      if (#value in target) (target as Slot).#value = value;
      else new Slot(target, value);
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
  };
}
