import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-local';
import { AccountsService } from '../accounts/accounts.service';
import type { VerifiedAccount } from '../sessions/authenticated-user';

/** Username and password check for the login route. */
@Injectable()
export class LocalStrategy extends PassportStrategy(Strategy, 'local') {
  constructor(private readonly accounts: AccountsService) {
    super({ usernameField: 'username', passwordField: 'password' });
  }

  validate(username: string, password: string): Promise<VerifiedAccount> {
    return this.accounts.verifyCredentials(username, password);
  }
}
