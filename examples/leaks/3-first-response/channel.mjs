// An unbuffered channel, as in Go: send() waits until a receiver takes the
// value. Open channels are listed in `openChannels` (for a stats page), so a
// sender nobody receives from stays alive with its channel.
export const openChannels = new Set();

export class Channel {
  #receivers = [];
  #senders = [];

  constructor() {
    openChannels.add(this);
  }

  /** Resolves when a receiver has taken `value`; rejects if `signal` aborts first. */
  send(value, { signal } = {}) {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const receiver = this.#receivers.shift();
    if (receiver) {
      receiver(value);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const sender = { value, resolve };
      this.#senders.push(sender);
      signal?.addEventListener('abort', () => {
        this.#senders = this.#senders.filter((s) => s !== sender);
        reject(signal.reason);
      }, { once: true });
    });
  }

  receive() {
    const sender = this.#senders.shift();
    if (sender) {
      sender.resolve();
      return Promise.resolve(sender.value);
    }
    return new Promise((resolve) => this.#receivers.push(resolve));
  }

  close() {
    openChannels.delete(this);
  }
}

/** A backend answering after `ms` (stands for a remote call). */
export function askBackend(name, ms) {
  return new Promise((resolve) => setTimeout(() => resolve({ backend: name, price: 40 + ms / 10 }), ms));
}
