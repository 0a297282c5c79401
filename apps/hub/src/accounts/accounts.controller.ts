import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { Access } from '../auth/access.decorator';
import { actorOf, type AuthenticatedRequest } from '../auth/current-user';
import { AccountsService, type UserView } from './accounts.service';
import { CreateUserDto } from './dto/create-user.dto';
import { ResetPasswordDto } from './dto/reset-password.dto';
import { UpdateUserDto } from './dto/update-user.dto';
import { Endpoint } from '../openapi/endpoint.decorator';

@ApiTags('accounts')
@ApiBearerAuth()
@Access('admin')
@Controller('api/users')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

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
}
