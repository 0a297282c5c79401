import type { NextFunction, Request, Response } from 'express';
import { HubErrorCode, HubException } from './hub.exception';
import { jsonInputProblems } from './json-input.util';

/**
 * Refuses, with 400 VALIDATION_FAILED naming each path, a parsed JSON body or a query string that the edge checks
 * of `json-input.util.ts` reject. Runs after the JSON body parser and before routing, so every listener (people,
 * enrollment, silo) and every route, authenticated or not, is covered.
 */
export function refuseHostileInput(req: Request, _res: Response, next: NextFunction): void {
  const problems = [
    ...(req.body === undefined ? [] : jsonInputProblems(req.body, 'body')),
    ...jsonInputProblems(req.query, 'query'),
  ];
  if (problems.length === 0) return next();
  next(new HubException(HubErrorCode.VALIDATION_FAILED, problems.join('; '), problems));
}
