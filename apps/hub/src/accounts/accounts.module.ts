import { Module } from '@nestjs/common';
import { SessionsModule } from '../sessions/sessions.module';
import { AccountRenamesService } from './account-renames.service';
import { AccountsController } from './accounts.controller';
import { AccountsRepository } from './accounts.repository';
import { AccountsService } from './accounts.service';
import { LoginBackoffService } from './login-backoff.service';

/**
 * People's accounts: administrators manage them (`/api/users`), sign-in checks their passwords. Changes that end
 * sessions (disable, role, password) revoke them in the same transaction, through SessionsService.
 */
@Module({
  imports: [SessionsModule],
  controllers: [AccountsController],
  providers: [AccountsRepository, AccountsService, LoginBackoffService, AccountRenamesService],
  exports: [AccountsService],
})
export class AccountsModule {}
