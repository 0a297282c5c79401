/** One member's result in a batch: its value, or the error that refuses (or fails) this member alone. */
export type MemberOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

interface Waiting<M, R> {
  member: M;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

interface Lane<M, R> {
  waiting: Waiting<M, R>[];
  /** Members of the batch running now. */
  running: number;
}

/**
 * Group commit per key (ADR 0022): work submitted under a key while a batch of that key is running waits; when the
 * batch ends, the next one takes everything that waited (at most `cap`, in arrival order) and runs it together. A
 * member submitted while nothing of its key runs starts a batch of its own at once, so a lone member waits for
 * nothing. Keys run independently of each other.
 *
 * `run` gets the members of one batch and returns one outcome per member, in order; members are settled only after
 * `run` resolved (for a transaction: after COMMIT). If `run` throws (or rejects), every member of the batch rejects
 * with that error.
 */
export class GroupCommit<K, M, R> {
  private readonly lanes = new Map<K, Lane<M, R>>();

  constructor(
    private readonly cap: number,
    private readonly run: (key: K, members: M[]) => Promise<MemberOutcome<R>[]>,
  ) {
    if (!Number.isSafeInteger(cap) || cap < 1) throw new RangeError(`a batch cap must be a positive integer: ${cap}`);
  }

  /** Settles with this member's outcome once the batch that took it has ended. */
  submit(key: K, member: M): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const lane = this.lanes.get(key);
      if (lane) {
        lane.waiting.push({ member, resolve, reject });
        return;
      }
      const fresh: Lane<M, R> = { waiting: [{ member, resolve, reject }], running: 0 };
      this.lanes.set(key, fresh);
      void this.drain(key, fresh);
    });
  }

  /** Members of `key` submitted and not settled yet: the running batch's and those waiting for the next. */
  pending(key: K): number {
    const lane = this.lanes.get(key);
    return lane ? lane.running + lane.waiting.length : 0;
  }

  private async drain(key: K, lane: Lane<M, R>): Promise<void> {
    while (lane.waiting.length > 0) {
      const batch = lane.waiting.splice(0, this.cap);
      lane.running = batch.length;
      let outcomes: MemberOutcome<R>[];
      try {
        outcomes = await this.run(
          key,
          batch.map((w) => w.member),
        );
        if (outcomes.length !== batch.length) {
          throw new Error(`a batch of ${batch.length} returned ${outcomes.length} outcomes`);
        }
      } catch (err) {
        lane.running = 0;
        for (const w of batch) w.reject(err);
        continue;
      }
      lane.running = 0;
      batch.forEach((w, i) => {
        const o = outcomes[i]!;
        if (o.ok) w.resolve(o.value);
        else w.reject(o.error);
      });
    }
    this.lanes.delete(key);
  }
}
