// A mutex and a countdown latch (Go's sync.Mutex and sync.WaitGroup).
export class Mutex {
  #locked = false;
  #waiting = [];

  acquire() {
    if (!this.#locked) {
      this.#locked = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release() {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#locked = false;
  }
}

export class Latch {
  #count;
  #waiting = [];

  constructor(count) {
    this.#count = count;
  }

  /** One more to wait for (WaitGroup.Add(1)): count work as it starts. */
  add() {
    this.#count++;
  }

  countDown() {
    if (--this.#count === 0) for (const resolve of this.#waiting.splice(0)) resolve();
  }

  wait() {
    return this.#count <= 0 ? Promise.resolve() : new Promise((resolve) => this.#waiting.push(resolve));
  }
}

/** Work on one part of a report (stands for a query). */
export function buildPart(name) {
  return new Promise((resolve) => setTimeout(() => resolve(name), 2));
}
