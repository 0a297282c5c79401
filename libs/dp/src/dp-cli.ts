// The logic of the `tessera-dp` command, as a pure function of its arguments so it can be tested without a process.
// Exit codes: 0 success (and --help), 2 bad input (usage or privacy parameters), 1 anything unexpected.

import { Command, CommanderError } from 'commander';

import { DEFAULT_PLD_DISCRETIZATION, pldEpsilon } from './pld-accountant';
import { epsilonForNoise, informationalExactIntegralEpsilon, noiseForEpsilon } from './privacy-calibration';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { DEFAULT_RDP_ORDERS_DESCRIPTION, OPACUS_DEFAULT_ALPHAS, RDP_ACCOUNTANT_NAME } from './rdp-accountant';

export interface CliResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export const CLI_EXIT_BAD_INPUT = 2;

// Library parameter names mapped to the flags a person typed, so error messages name what to fix.
const FLAG_FOR_PARAMETER: Readonly<Record<string, string>> = {
  noiseMultiplier: '--noise',
  samplingRate: '--rate',
  steps: '--steps',
  delta: '--delta',
  targetEpsilon: '--epsilon',
  epsilon: '--epsilon',
  orders: '--orders',
  discretization: '--discretization',
  accountant: '--accountant',
};

const NUMBER_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseNumber(text: string, parameter: string, code: PrivacyParameterErrorCode): number {
  const trimmed = text.trim();
  if (!NUMBER_PATTERN.test(trimmed)) {
    throw new PrivacyParameterError(code, parameter, `${parameter} must be a number; got '${text}'`);
  }
  return Number(trimmed);
}

interface OrderGrid {
  readonly orders: readonly number[] | undefined;
  readonly description: string;
}

function parseOrders(text: string | undefined): OrderGrid {
  if (text === undefined || text === 'default')
    return { orders: undefined, description: DEFAULT_RDP_ORDERS_DESCRIPTION };
  if (text === 'opacus')
    return { orders: OPACUS_DEFAULT_ALPHAS, description: 'opacus default: 1.1..10.9 step 0.1, 12..63' };
  const orders = text.split(',').map((part) => parseNumber(part, 'orders', PrivacyParameterErrorCode.InvalidOrder));
  return { orders, description: `custom: ${orders.join(',')}` };
}

interface CommonOptions {
  rate: string;
  steps: string;
  delta: string;
  orders?: string;
}

function commonInputs(options: CommonOptions): { samplingRate: number; steps: number; delta: number; grid: OrderGrid } {
  return {
    samplingRate: parseNumber(options.rate, 'samplingRate', PrivacyParameterErrorCode.InvalidSamplingRate),
    steps: parseNumber(options.steps, 'steps', PrivacyParameterErrorCode.InvalidSteps),
    delta: parseNumber(options.delta, 'delta', PrivacyParameterErrorCode.InvalidDelta),
    grid: parseOrders(options.orders),
  };
}

function buildProgram(out: (text: string) => void, err: (text: string) => void): Command {
  const program = new Command('tessera-dp')
    .description(
      'Privacy accounting for DP-SGD: Rényi DP of the Poisson-subsampled Gaussian mechanism, charged exactly as ' +
        "Google's dp_accounting RdpAccountant computes it",
    )
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: err })
    .showHelpAfterError(false);
  const ordersHelp = "RDP orders: 'default' (dp-accounting grid), 'opacus', or a comma-separated list";

  program
    .command('epsilon')
    .description('epsilon spent by --steps steps with noise multiplier --noise and sampling rate --rate, at --delta')
    .requiredOption('--noise <z>', 'noise multiplier (noise stddev / clipping norm), > 0')
    .requiredOption('--rate <q>', 'Poisson sampling rate in [0, 1]')
    .requiredOption('--steps <t>', 'number of steps, a positive integer')
    .requiredOption('--delta <d>', 'target delta in (0, 1)')
    .option('--orders <list>', ordersHelp)
    .option(
      '--accountant <name>',
      "'rdp' (the charged figure: what Tessera prices and enforces with, = dp_accounting RdpAccountant), " +
        "'exact-integral' (RDP with fractional orders integrated exactly, as Opacus does: informational) or " +
        "'pld' (privacy loss distribution: tighter, informational)",
      'rdp',
    )
    .option('--discretization <d>', `with --accountant pld: loss grid spacing (default ${DEFAULT_PLD_DISCRETIZATION})`)
    .action((options: CommonOptions & { noise: string; accountant: string; discretization?: string }) => {
      const { samplingRate, steps, delta, grid } = commonInputs(options);
      const noiseMultiplier = parseNumber(
        options.noise,
        'noiseMultiplier',
        PrivacyParameterErrorCode.InvalidNoiseMultiplier,
      );
      if (options.accountant === 'pld') {
        const discretization =
          options.discretization === undefined
            ? DEFAULT_PLD_DISCRETIZATION
            : parseNumber(options.discretization, 'discretization', PrivacyParameterErrorCode.InvalidOption);
        const pld = pldEpsilon({ noiseMultiplier, samplingRate, steps, delta, discretization });
        out(
          JSON.stringify({
            epsilon: pld.epsilon,
            delta,
            accountant: pld.accountant,
            informational: true,
            bindingDirection: pld.direction,
            discretization,
            noiseMultiplier,
            samplingRate,
            steps,
          }) + '\n',
        );
        return;
      }
      if (options.accountant === 'exact-integral') {
        const exact = informationalExactIntegralEpsilon([{ noiseMultiplier, samplingRate, steps }], delta, {
          orders: grid.orders,
        });
        out(
          JSON.stringify({
            epsilon: exact.epsilon,
            delta,
            bestOrder: exact.bestOrder,
            accountant: exact.accountant,
            informational: true,
            orders: grid.description,
            noiseMultiplier,
            samplingRate,
            steps,
          }) + '\n',
        );
        return;
      }
      if (options.accountant !== 'rdp') {
        throw new PrivacyParameterError(
          PrivacyParameterErrorCode.InvalidOption,
          'accountant',
          `--accountant must be 'rdp', 'exact-integral' or 'pld'; got '${options.accountant}'`,
        );
      }
      const cost = epsilonForNoise({ noiseMultiplier, samplingRate, steps, delta, orders: grid.orders });
      out(
        JSON.stringify({
          epsilon: cost.epsilon,
          delta,
          bestOrder: cost.bestOrder,
          accountant: RDP_ACCOUNTANT_NAME,
          charged: true,
          orders: grid.description,
          noiseMultiplier,
          samplingRate,
          steps,
        }) + '\n',
      );
    });

  program
    .command('noise')
    .description(
      'smallest noise multiplier whose charged epsilon for --steps steps at sampling rate --rate is within --epsilon ' +
        'at --delta (--rate 1: --steps releases of the plain Gaussian mechanism)',
    )
    .requiredOption('--epsilon <e>', 'target epsilon, > 0')
    .requiredOption('--rate <q>', 'Poisson sampling rate in (0, 1]')
    .requiredOption('--steps <t>', 'number of steps, a positive integer')
    .requiredOption('--delta <d>', 'target delta in (0, 1)')
    .option('--orders <list>', ordersHelp)
    .action((options: CommonOptions & { epsilon: string }) => {
      const { samplingRate, steps, delta, grid } = commonInputs(options);
      const targetEpsilon = parseNumber(options.epsilon, 'targetEpsilon', PrivacyParameterErrorCode.InvalidEpsilon);
      const calibration = noiseForEpsilon({ targetEpsilon, samplingRate, steps, delta, orders: grid.orders });
      out(
        JSON.stringify({
          noiseMultiplier: calibration.noiseMultiplier,
          epsilon: calibration.epsilon,
          targetEpsilon,
          delta,
          bestOrder: calibration.bestOrder,
          accountant: RDP_ACCOUNTANT_NAME,
          charged: true,
          orders: grid.description,
          samplingRate,
          steps,
        }) + '\n',
      );
    });
  return program;
}

/** Runs `tessera-dp` with `args` (without the node and script paths) and returns what it printed and its exit code. */
export function runDpCli(args: readonly string[]): CliResult {
  let stdout = '';
  let stderr = '';
  const program = buildProgram(
    (text) => (stdout += text),
    (text) => (stderr += text),
  );
  if (args.length === 0) {
    program.outputHelp({ error: true });
    return { stdout, stderr, exitCode: CLI_EXIT_BAD_INPUT };
  }
  try {
    program.parse([...args], { from: 'user' });
    return { stdout, stderr, exitCode: 0 };
  } catch (error) {
    if (error instanceof PrivacyParameterError) {
      const flag = FLAG_FOR_PARAMETER[error.parameter] ?? error.parameter;
      stderr += `tessera-dp: invalid ${flag} (${error.code}): ${error.message}\n`;
      return { stdout, stderr, exitCode: CLI_EXIT_BAD_INPUT };
    }
    if (error instanceof CommanderError) {
      // Commander already printed its message; help and version are successes.
      const benign = ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(error.code);
      return { stdout, stderr, exitCode: benign ? 0 : CLI_EXIT_BAD_INPUT };
    }
    stderr += `tessera-dp: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`;
    return { stdout, stderr, exitCode: 1 };
  }
}
