import { Injectable, Logger, type OnApplicationShutdown, type OnModuleDestroy } from '@nestjs/common';
import { RoundsQueryService, type RoundView } from '../rounds/rounds-query.service';
import { StudiesService, type StudyView } from '../studies/studies.service';

/** How often a watched study is read from the database (ms). Round state lives only there, so any replica sees it. */
export const LIVE_POLL_MS = 500;

/**
 * One message of the stream: the study and its rounds as they are now. The console reads it as
 * StudyLiveMessage (@tessera/protocol api-views), which mirrors these hub types.
 */
export interface StudySnapshot {
  type: 'study';
  study: StudyView;
  rounds: RoundView[];
  /** When the hub read them (ISO 8601). */
  at: string;
}

/** One open stream: receives each changed snapshot as serialized JSON, and is told when the feed ends. */
export interface LiveSubscriber {
  send(json: string): void;
  end(): void;
}

interface StudyWatch {
  readonly studyId: string;
  readonly subscribers: Set<LiveSubscriber>;
  /** The last snapshot sent, serialized without its timestamp (to compare); null before the first read. */
  lastKey: string | null;
  lastJson: string | null;
  timer: NodeJS.Timeout | null;
  polling: boolean;
}

/**
 * Watches studies for the console's live view: one poller per watched study, shared by every stream on it, reading
 * the study and its rounds every LIVE_POLL_MS and pushing the snapshot to the streams only when it changed.
 * Polling the database (not in-process events) keeps it correct with several hub replicas.
 */
@Injectable()
export class StudyLiveFeedService implements OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger(StudyLiveFeedService.name);
  private readonly watches = new Map<string, StudyWatch>();

  constructor(
    private readonly studies: StudiesService,
    private readonly rounds: RoundsQueryService,
  ) {}

  /** Reads the snapshot once; throws the hub's NOT_FOUND when there is no such study. */
  async snapshot(studyId: string): Promise<StudySnapshot> {
    const study = await this.studies.get(studyId);
    const rounds = await this.rounds.roundsOf(studyId);
    return { type: 'study', study, rounds, at: new Date().toISOString() };
  }

  /**
   * Adds a stream to a study's watch and sends it the latest snapshot at once: the watch's own, or `initial` (just
   * read by the caller) when the study was not watched yet. Returns the function that removes the stream.
   */
  subscribe(studyId: string, subscriber: LiveSubscriber, initial: StudySnapshot): () => void {
    let watch = this.watches.get(studyId);
    if (!watch) {
      watch = { studyId, subscribers: new Set(), lastKey: null, lastJson: null, timer: null, polling: false };
      this.watches.set(studyId, watch);
      this.remember(watch, initial);
      this.schedule(watch, LIVE_POLL_MS);
    }
    watch.subscribers.add(subscriber);
    subscriber.send(watch.lastJson ?? JSON.stringify(initial));
    return () => this.unsubscribe(studyId, subscriber);
  }

  /** Streams open now (all studies). */
  openStreams(): number {
    let n = 0;
    for (const w of this.watches.values()) n += w.subscribers.size;
    return n;
  }

  onModuleDestroy(): void {
    this.endAll();
  }

  onApplicationShutdown(): void {
    this.endAll();
  }

  /** Ends every stream, so a stopping hub does not wait for open connections to time out. */
  endAll(): void {
    for (const watch of this.watches.values()) {
      if (watch.timer) clearTimeout(watch.timer);
      for (const s of watch.subscribers) s.end();
      watch.subscribers.clear();
    }
    this.watches.clear();
  }

  private unsubscribe(studyId: string, subscriber: LiveSubscriber): void {
    const watch = this.watches.get(studyId);
    if (!watch) return;
    watch.subscribers.delete(subscriber);
    if (watch.subscribers.size === 0) {
      if (watch.timer) clearTimeout(watch.timer);
      this.watches.delete(studyId);
    }
  }

  /**
   * Keeps `message` as the watch's latest and returns its JSON when it differs from the previous one (the read time
   * aside), else null.
   */
  private remember(watch: StudyWatch, message: StudySnapshot): string | null {
    const key = JSON.stringify({ study: message.study, rounds: message.rounds });
    if (key === watch.lastKey) return null;
    watch.lastKey = key;
    watch.lastJson = JSON.stringify(message);
    return watch.lastJson;
  }

  private schedule(watch: StudyWatch, delayMs: number): void {
    watch.timer = setTimeout(() => void this.poll(watch), delayMs);
    watch.timer.unref();
  }

  private async poll(watch: StudyWatch): Promise<void> {
    if (this.watches.get(watch.studyId) !== watch || watch.polling) return;
    watch.polling = true;
    try {
      const message = await this.snapshot(watch.studyId);
      const changed = this.remember(watch, message);
      if (changed !== null) for (const s of watch.subscribers) s.send(changed);
    } catch (err) {
      // A failed read (database restarting, study deleted) is retried on the next tick; the streams stay open.
      this.logger.warn(`live feed of study ${watch.studyId}: ${(err as Error).message}`);
    } finally {
      watch.polling = false;
    }
    if (this.watches.get(watch.studyId) === watch) this.schedule(watch, LIVE_POLL_MS);
  }
}
