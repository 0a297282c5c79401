import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { SiloStudy, SiloTask } from '@tessera/protocol';
import type { TaskOutcome } from './task-executor';

/** Where the daemon's lines go, and how a finished task shows. */
export interface ProgressDisplay {
  line(text: string): void;
  taskDone(task: SiloTask, study: SiloStudy | undefined, outcome: TaskOutcome): void;
  stop(): void;
}

/** Plain lines (Docker logs, files, CI): one line per step, nothing redrawn. */
export function plainDisplay(write: (text: string) => void): ProgressDisplay {
  return { line: write, taskDone: () => undefined, stop: () => undefined };
}

const OUTCOME_WORD: Record<TaskOutcome['kind'], string> = {
  uploaded: 'update accepted',
  evaluated: 'evaluation reported',
  failed: 'failed (reported to the hub)',
  refused: 'refused by the hub',
  skipped: 'skipped',
  summed: 'masked input summed',
};

/**
 * In a terminal: a bar per study (its training rounds plus the final evaluation) above the scrolling step lines, so
 * a steward watching the agent sees where each study stands. Lines are printed through the bars so they do not
 * tear them.
 */
export function terminalDisplay(stream: NodeJS.WriteStream): ProgressDisplay {
  const bars = new MultiBar(
    {
      stream,
      format: ' {study} |{bar}| round {value}/{total} · {status}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      autopadding: true,
      // The agent handles SIGTERM/SIGINT itself (finish the current step, then exit 0).
      gracefulExit: false,
    },
    Presets.shades_classic,
  );
  const byStudy = new Map<string, SingleBar>();
  return {
    line: (text) => {
      const lineText = text.endsWith('\n') ? text : `${text}\n`;
      // Before the first bar exists the multibar is not drawing (and would hold the line back): write it directly.
      if (byStudy.size === 0) stream.write(lineText);
      else bars.log(lineText);
    },
    taskDone: (task, study, outcome) => {
      if (!study) return;
      // Training rounds, then one evaluation round: the bar is full when the final model has been evaluated.
      const total = study.plan.training.rounds + 1;
      let bar = byStudy.get(task.studyId);
      if (!bar) {
        bar = bars.create(total, 0, { study: study.plan.name, status: 'waiting' });
        byStudy.set(task.studyId, bar);
      }
      const done = outcome.kind === 'uploaded' || outcome.kind === 'evaluated';
      bar.setTotal(total);
      bar.update(Math.min(total, done ? task.round : task.round - 1), {
        study: study.plan.name,
        status: OUTCOME_WORD[outcome.kind],
      });
    },
    stop: () => {
      if (byStudy.size > 0) bars.update(); // a final draw flushes the lines still held back
      bars.stop();
    },
  };
}

/** A terminal display when `stream` is an interactive terminal (and not CI), plain lines otherwise. */
export function progressDisplayFor(
  stream: NodeJS.WriteStream,
  write: (text: string) => void,
  env: NodeJS.ProcessEnv,
): ProgressDisplay {
  return stream.isTTY && !env.CI ? terminalDisplay(stream) : plainDisplay(write);
}
