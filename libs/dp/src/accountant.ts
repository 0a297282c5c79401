// @tessera/dp/accountant: the accountant, calibration and a study plan's privacy mechanism, with no Node built-ins,
// so the web console computes exactly the same numbers as the hub and the agent.
export * from './privacy-parameter.exception';
export * from './rdp-accountant';
export * from './privacy-calibration';
export * from './study-privacy';
