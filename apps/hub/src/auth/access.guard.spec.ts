import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { describe, expect, it } from 'vitest';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { Access } from '../access/access.decorator';
import { AccessGuard } from './access.guard';
import { markListener, type Listener } from './listener';

class Undeclared {
  handler(): void {}
}
class Public {
  @Access('public')
  handler(): void {}
}
class SiloOnly {
  @Access('silo')
  handler(): void {}
}
class AdminOnly {
  @Access('admin')
  handler(): void {}
}

function contextFor(cls: { prototype: { handler: () => void } }, listener: Listener, headers = {}): ExecutionContext {
  const req = { headers, socket: { encrypted: false } } as never;
  markListener(req, listener);
  return {
    getHandler: () => cls.prototype.handler,
    getClass: () => cls,
    switchToHttp: () => ({ getRequest: () => req, getResponse: () => ({}) }),
  } as unknown as ExecutionContext;
}

async function codeOf(p: Promise<unknown>): Promise<HubErrorCode | 'allowed'> {
  try {
    await p;
    return 'allowed';
  } catch (err) {
    if (err instanceof HubException) return err.code;
    throw err;
  }
}

describe('AccessGuard', () => {
  const guard = new AccessGuard(new Reflector());

  it('refuses a route that declares no access (fails closed)', async () => {
    expect(await codeOf(guard.canActivate(contextFor(Undeclared, 'people')))).toBe(
      HubErrorCode.ROUTE_ACCESS_UNDECLARED,
    );
  });

  it('admits public routes on the people listener only', async () => {
    expect(await codeOf(guard.canActivate(contextFor(Public, 'people')))).toBe('allowed');
    expect(await codeOf(guard.canActivate(contextFor(Public, 'silo')))).toBe(HubErrorCode.FORBIDDEN);
  });

  it('serves silo routes on the silo listener only, and only to a verified certificate', async () => {
    expect(await codeOf(guard.canActivate(contextFor(SiloOnly, 'silo')))).toBe(HubErrorCode.SILO_IDENTITY_REFUSED);
    expect(await codeOf(guard.canActivate(contextFor(SiloOnly, 'people')))).toBe(HubErrorCode.FORBIDDEN);
    expect(await codeOf(guard.canActivate(contextFor(SiloOnly, 'enroll')))).toBe(HubErrorCode.FORBIDDEN);
  });

  it('asks for a session on people routes', async () => {
    expect(await codeOf(guard.canActivate(contextFor(AdminOnly, 'people')))).toBe(HubErrorCode.UNAUTHENTICATED);
    expect(await codeOf(guard.canActivate(contextFor(AdminOnly, 'silo')))).toBe(HubErrorCode.FORBIDDEN);
  });
});
