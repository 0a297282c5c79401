import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  ParseUUIDPipe,
  Patch,
  Post,
  Put,
  Req,
} from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { Access } from '../access/access.decorator';
import { actorOf, type AuthenticatedRequest } from '../sessions/current-user';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { oidcSettingsOf } from '../config/oidc-config.util';
import { AccountsService, type UserView } from './accounts.service';
import { CreateUserDto } from './dto/create-user.dto';
import { LinkOidcIdentityDto } from './dto/link-oidc-identity.dto';
import { ResetPasswordDto } from './dto/reset-password.dto';
import { UpdateUserDto } from './dto/update-user.dto';
import { Endpoint } from '../openapi/endpoint.decorator';

@ApiTags('accounts')
@ApiBearerAuth()
@Access('admin')
@Controller('api/users')
export class AccountsController {
  /** The issuer an identity is linked at when the request names none: the configured provider's, if sign-in through one is on. */
  private readonly configuredIssuer: string | undefined;

  constructor(
    private readonly accounts: AccountsService,
    @Inject(HUB_CONFIG) config: HubConfig,
  ) {
    this.configuredIssuer = oidcSettingsOf(config)?.issuer;
  }

  @Get()
  @Endpoint({ summary: 'List the people who may sign in', answer: { schema: 'UserView', list: true } })
  list(): Promise<UserView[]> {
    return this.accounts.list();
  }

  @Post()
  @Endpoint({ summary: 'Create an administrator or auditor account', answer: { schema: 'UserView' } })
  create(@Body() dto: CreateUserDto, @Req() req: AuthenticatedRequest): Promise<UserView> {
    return this.accounts.create(dto.username, dto.password, dto.role, actorOf(req), {
      mustChangePassword: dto.mustChangePassword,
    });
  }

  /** Role and disabled; either change ends the account's sessions. */
  @Patch(':id')
  @Endpoint({ summary: 'Change an account’s role or disable it (ends its sessions)', answer: { schema: 'UserView' } })
  update(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: UpdateUserDto,
    @Req() req: AuthenticatedRequest,
  ): Promise<UserView> {
    return this.accounts.update(id, dto, actorOf(req));
  }

  /** Sets a temporary password: the account's sessions end and its next sign-in must change it. */
  @Post(':id/password')
  @HttpCode(200)
  @Endpoint({ summary: 'Set a temporary password (ends the account’s sessions)', answer: { schema: 'UserView' } })
  resetPassword(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: ResetPasswordDto,
    @Req() req: AuthenticatedRequest,
  ): Promise<UserView> {
    return this.accounts.resetPassword(id, dto.password, actorOf(req));
  }

  /** Ends every session of the account now. */
  @Delete(':id/sessions')
  @Endpoint({ summary: 'End every session of an account', answer: { schema: 'UserView' } })
  revokeSessions(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<UserView> {
    return this.accounts.revokeSessions(id, actorOf(req));
  }

  /** Links the account to a person's identity at the identity provider; that person may then sign in through it. */
  @Put(':id/oidc')
  @Endpoint({
    summary: 'Link an account to an identity at the identity provider (OIDC sign-in)',
    answer: { schema: 'UserView' },
  })
  linkOidc(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: LinkOidcIdentityDto,
    @Req() req: AuthenticatedRequest,
  ): Promise<UserView> {
    const issuer = dto.issuer ?? this.configuredIssuer;
    if (!issuer) {
      const problem = 'issuer is required: sign-in with an identity provider is not set up (TESSERA_OIDC_ISSUER)';
      throw new HubException(HubErrorCode.VALIDATION_FAILED, problem, [problem]);
    }
    return this.accounts.linkOidcIdentity(id, { issuer, subject: dto.subject }, actorOf(req));
  }

  /** Removes the link: the account signs in with its password only. */
  @Delete(':id/oidc')
  @Endpoint({ summary: 'Unlink an account from its identity-provider identity', answer: { schema: 'UserView' } })
  unlinkOidc(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<UserView> {
    return this.accounts.unlinkOidcIdentity(id, actorOf(req));
  }
}
