// @tessera/secagg: public surface.
export {
  ExclusionReason,
  SecAggErrorCode,
  SecAggException,
  type ParticipantExclusion,
  type SecAggStage,
} from './secagg.exception';
export {
  compareIds,
  createSecAggConfig,
  MAX_PARTICIPANTS,
  MAX_VECTOR_LENGTH,
  parseSecAggConfig,
  recommendedThreshold,
  SECAGG_PROTOCOL,
  SecAggConfig,
  secAggConfigHash,
  toleratedNeighbourDropouts,
} from './parameters';
export {
  assertNoWrap,
  coordinateBound,
  dequantiseSum,
  maxSafeScale,
  quantise,
  sumQuantisationErrorBound,
  type QuantisationParameters,
  type QuantisationTrace,
} from './quantisation';
export { addNoiseShare } from './noise-share';
export { cryptoRandom, type SecAggRandom } from './random-source';
export {
  EncryptedShare,
  KeyAdvertisement,
  MaskedInputHeader,
  RevealedShare,
  ShareKeysMessage,
  UnmaskingRequest,
  UnmaskingResponse,
} from './messages';
export { applyMasks, type MaskTerm } from './mask-stream';
export { neighbourGraph, type NeighbourGraph } from './neighbour-graph';
export { type IdentityKeyDirectory, type IdentityPublicKey } from './identity-signature';
export { checkAdvertisement, type Checked } from './advertisement';
export { advertiseKeys, maskInput, shareKeys } from './participant';
export { revealShares } from './participant-reveal';
export {
  type AdvertisedState,
  type MaskedState,
  type NeighbourKeys,
  type SharedState,
  type ShareKind,
} from './participant-state';
export {
  checkMaskedInput,
  checkShareMessage,
  collectAdvertisements,
  routeShares,
  type SharerRecord,
  type ShareRouting,
} from './hub-collection';
export { addModulo, MaskedSumAccumulator } from './masked-sum';
export { decodeMaskedVector, encodeMaskedVector, maskedVectorBytes } from './masked-vector-codec';
export {
  checkUnmaskingResponse,
  planUnmasking,
  unmaskingProgress,
  unmaskSum,
  type Reconstruction,
  type UnmaskingPlan,
} from './unmasking';
