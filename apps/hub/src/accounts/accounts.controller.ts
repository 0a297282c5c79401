import { Body, Controller, Get, Param, ParseUUIDPipe, Patch, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { Access } from '../auth/access.decorator';
import { actorOf, type AuthenticatedRequest } from '../auth/current-user';
import { AccountsService, type UserView } from './accounts.service';
import { CreateUserDto } from './dto/create-user.dto';
import { UpdateUserDto } from './dto/update-user.dto';

@ApiTags('accounts')
@ApiBearerAuth()
@Access('admin')
@Controller('api/users')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  @Get()
  list(): Promise<UserView[]> {
    return this.accounts.list();
  }

  @Post()
  create(@Body() dto: CreateUserDto, @Req() req: AuthenticatedRequest): Promise<UserView> {
    return this.accounts.create(dto.username, dto.password, dto.role, actorOf(req));
  }

  @Patch(':id')
  update(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: UpdateUserDto,
    @Req() req: AuthenticatedRequest,
  ): Promise<UserView> {
    return this.accounts.update(id, dto, actorOf(req));
  }
}
