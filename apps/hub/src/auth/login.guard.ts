import { Injectable, type ExecutionContext } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import type { Request } from 'express';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { LoginDto } from './dto/login.dto';
import { validationMessages } from '../common/validation';

/**
 * Validates the login body as strictly as every other body (guards run before pipes), then lets passport's
 * local strategy check the password.
 */
@Injectable()
export class LoginGuard extends AuthGuard('local') {
  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    const dto = plainToInstance(LoginDto, req.body ?? {});
    const errors = await validate(dto, { whitelist: true, forbidNonWhitelisted: true });
    if (errors.length > 0) {
      const problems = validationMessages(errors);
      throw new HubException(HubErrorCode.VALIDATION_FAILED, problems.join('; '), problems);
    }
    return (await super.canActivate(context)) as boolean;
  }
}
