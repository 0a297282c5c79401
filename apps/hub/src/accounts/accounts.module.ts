import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SessionsModule } from '../sessions/sessions.module';
import { AccountRenamesService } from './account-renames.service';
import { AccountsController } from './accounts.controller';
import { AccountsService } from './accounts.service';
import { LoginBackoffService } from './login-backoff.service';
import { UserEntity } from './user.entity';

/**
 * People's accounts: administrators manage them (`/api/users`), sign-in checks their passwords. Changes that end
 * sessions (disable, role, password) revoke them in the same transaction, through SessionsService.
 */
@Module({
  imports: [TypeOrmModule.forFeature([UserEntity]), SessionsModule],
  controllers: [AccountsController],
  providers: [AccountsService, LoginBackoffService, AccountRenamesService],
  exports: [AccountsService],
})
export class AccountsModule {}
