import { AggregationException, DigestMismatchException } from '@tessera/aggregation';
import { AuditRecordError, BundleBuildError, SigningKeyError } from '@tessera/audit';
import { CanonicalJsonError } from '@tessera/canonical';
import { PrivacyParameterError, PrivacyPlanError } from '@tessera/dp';
import { ModelSpecException, TabularDataException, TrainingInputException } from '@tessera/ml/server';
import { PkiErrorCode, PkiException } from '@tessera/pki';
import { NetworkSpecError, UpdateFrameError } from '@tessera/protocol';
import { SecAggErrorCode, SecAggException } from '@tessera/secagg';
import { HubErrorCode, INTERNAL_ERROR_MESSAGE } from './hub.exception';

/** A class of error a library throws on purpose (whatever its constructor takes). */
export type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * How one library error class answers over HTTP when it reaches the hub's error filter: one code of the contract,
 * or, for a class that holds both the caller's faults and the hub's own, one rule choosing by the error's own code.
 */
export interface LibraryErrorAnswer {
  library: string;
  error: ErrorClass;
  /** Why this answer: whose fault such an error is at the hub. */
  why: string;
  code: HubErrorCode | ((error: Error) => HubErrorCode);
}

/** PKI refusals of what a silo sent (its CSR and the key in it); the rest concern the hub's own CA material. */
const PKI_REQUEST_FAULTS: ReadonlySet<PkiErrorCode> = new Set([
  PkiErrorCode.CsrMalformed,
  PkiErrorCode.CsrSignatureInvalid,
  PkiErrorCode.CsrRequestsCa,
  PkiErrorCode.CsrIdentityMismatch,
  PkiErrorCode.CsrUnsupportedAlgorithm,
  PkiErrorCode.KeyTooWeak,
  PkiErrorCode.KeyMalformed,
  PkiErrorCode.SiloIdInvalid,
]);

/** Secure-aggregation refusals of a silo's message itself; the rest are the round's state, which the hub keeps. */
const SECAGG_MESSAGE_FAULTS: ReadonlySet<SecAggErrorCode> = new Set([
  SecAggErrorCode.MalformedMessage,
  SecAggErrorCode.ConfigMismatch,
  SecAggErrorCode.VectorInvalid,
]);

/**
 * Every error class the libraries export, each with exactly one HTTP answer (a spec enumerates the libraries'
 * exports and fails on a class missing here, listed twice, or no longer exported). Where a service translates a
 * library error itself (with more context, e.g. a CSR refusal recorded in the audit trail), it answers the same code.
 * An answer of INTERNAL_SERVER_ERROR hides the message: such an error is the hub's bug, logged with its stack.
 */
export const LIBRARY_ERROR_ANSWERS: readonly LibraryErrorAnswer[] = [
  {
    library: '@tessera/canonical',
    error: CanonicalJsonError,
    why: 'the hub hashes and signs only values it built itself',
    code: HubErrorCode.INTERNAL_SERVER_ERROR,
  },
  {
    library: '@tessera/protocol',
    error: UpdateFrameError,
    why: "a silo's update frame is not what the protocol allows",
    code: HubErrorCode.UPDATE_MALFORMED,
  },
  {
    library: '@tessera/protocol',
    error: NetworkSpecError,
    why: "a study plan's network specification is invalid",
    code: HubErrorCode.PLAN_INVALID,
  },
  {
    library: '@tessera/dp',
    error: PrivacyPlanError,
    why: 'no noise meets the plan’s privacy target within the plan',
    code: HubErrorCode.PLAN_INVALID,
  },
  {
    library: '@tessera/dp',
    error: PrivacyParameterError,
    why: 'plans are priced when they are validated; a refusal afterwards is the hub’s bug',
    code: HubErrorCode.INTERNAL_SERVER_ERROR,
  },
  {
    library: '@tessera/aggregation',
    error: DigestMismatchException,
    why: 'the round closer handles a stored update read with other bytes (set aside, audited); never a request’s doing',
    code: HubErrorCode.INTERNAL_SERVER_ERROR,
  },
  {
    library: '@tessera/aggregation',
    error: AggregationException,
    why: 'the hub aggregates only updates it checked when they arrived',
    code: HubErrorCode.INTERNAL_SERVER_ERROR,
  },
  {
    library: '@tessera/ml',
    error: ModelSpecException,
    why: 'model specifications come from validated plans',
    code: HubErrorCode.INTERNAL_SERVER_ERROR,
  },
  {
    library: '@tessera/ml',
    error: TrainingInputException,
    why: 'the hub evaluates and exports only models it built',
    code: HubErrorCode.INTERNAL_SERVER_ERROR,
  },
  {
    library: '@tessera/ml',
    error: TabularDataException,
    why: 'the hub reads no silo data',
    code: HubErrorCode.INTERNAL_SERVER_ERROR,
  },
  {
    library: '@tessera/pki',
    error: PkiException,
    why: "a silo's certificate request is refused; the hub's own CA material failing is the hub's fault",
    code: (e) =>
      e instanceof PkiException && PKI_REQUEST_FAULTS.has(e.code)
        ? HubErrorCode.CSR_REJECTED
        : HubErrorCode.INTERNAL_SERVER_ERROR,
  },
  {
    library: '@tessera/audit',
    error: AuditRecordError,
    why: 'the hub writes audit records from its own state',
    code: HubErrorCode.INTERNAL_SERVER_ERROR,
  },
  {
    library: '@tessera/audit',
    error: BundleBuildError,
    why: 'report bundles are built from the hub’s own audit chain',
    code: HubErrorCode.INTERNAL_SERVER_ERROR,
  },
  {
    library: '@tessera/audit',
    error: SigningKeyError,
    why: 'the signing key is the hub’s own',
    code: HubErrorCode.INTERNAL_SERVER_ERROR,
  },
  {
    library: '@tessera/secagg',
    error: SecAggException,
    why: "a silo's secure-aggregation message is malformed; the round's own state failing is the hub's fault",
    code: (e) =>
      e instanceof SecAggException && SECAGG_MESSAGE_FAULTS.has(e.code)
        ? HubErrorCode.UPDATE_MALFORMED
        : HubErrorCode.INTERNAL_SERVER_ERROR,
  },
];

/**
 * The code and message a library error is answered with, or null when `error` is none of the libraries' classes.
 * The message is the library's own (written for people, never holding data values) unless the answer is a 500.
 */
export function libraryErrorAnswer(error: unknown): { code: HubErrorCode; message: string } | null {
  for (const entry of LIBRARY_ERROR_ANSWERS) {
    if (!(error instanceof entry.error)) continue;
    const code = typeof entry.code === 'function' ? entry.code(error) : entry.code;
    return { code, message: code === HubErrorCode.INTERNAL_SERVER_ERROR ? INTERNAL_ERROR_MESSAGE : error.message };
  }
  return null;
}
