// An async queue that workers consume with `for await`. Every open queue is
// listed in `openQueues` (for a stats page), so a queue nobody closes, and
// the workers waiting on it, stay alive.
export const openQueues = new Set();

export class AsyncQueue {
  #items = [];
  #waiting = [];
  #closed = false;

  constructor() {
    openQueues.add(this);
  }

  push(item) {
    const waiter = this.#waiting.shift();
    if (waiter) waiter({ value: item, done: false });
    else this.#items.push(item);
  }

  /** Ends every `for await` over the queue once its items are taken. */
  close() {
    this.#closed = true;
    openQueues.delete(this);
    for (const waiter of this.#waiting.splice(0)) waiter({ value: undefined, done: true });
  }

  next() {
    if (this.#items.length > 0) return Promise.resolve({ value: this.#items.shift(), done: false });
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}
