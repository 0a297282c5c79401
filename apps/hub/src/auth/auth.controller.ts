import { Body, Controller, Get, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ThrottlerGuard } from '@nestjs/throttler';
import { Access } from './access.decorator';
import { AuthService } from './auth.service';
import type { AuthenticatedUser } from './authenticated-user';
import { userOf, type AuthenticatedRequest } from './current-user';
import { LoginDto, SessionDto } from './dto/login.dto';
import { LoginGuard } from './login.guard';

@ApiTags('auth')
@Controller('api/auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  /** Rate-limited per client address; a failure answers the same whether or not the account exists. */
  @Access('public')
  @Post('login')
  @HttpCode(200)
  @UseGuards(ThrottlerGuard, LoginGuard)
  @ApiOkResponse({ type: SessionDto })
  login(@Body() _body: LoginDto, @Req() req: AuthenticatedRequest): Promise<SessionDto> {
    return this.auth.issueSession(userOf(req));
  }

  @Access('admin', 'auditor')
  @ApiBearerAuth()
  @Get('me')
  me(@Req() req: AuthenticatedRequest): AuthenticatedUser {
    return userOf(req);
  }
}
