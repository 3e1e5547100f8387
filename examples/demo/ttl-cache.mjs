// A cache whose entries expire. Its constructor starts a sweeper interval that
// nothing ever clears: every instance lives forever (the classic time.Tick leak).
export class TtlCache {
  constructor(ttlMs) {
    this.ttlMs = ttlMs;
    this.entries = new Map();
    this.sweeper = setInterval(() => this.sweep(), ttlMs); // the leak
  }

  get(key) {
    const entry = this.entries.get(key);
    return entry && entry.expires > Date.now() ? entry.value : undefined;
  }

  set(key, value) {
    this.entries.set(key, { value, expires: Date.now() + this.ttlMs });
  }

  sweep() {
    const now = Date.now();
    for (const [key, entry] of this.entries) if (entry.expires <= now) this.entries.delete(key);
  }
}
