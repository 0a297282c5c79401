/** Passwords: at least NIST SP 800-63B §3.1.1.2's 8, raised to 12 for accounts that run a federation; any characters. */
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 256;

/** Usernames: letters, digits, dot, dash, underscore; 3 to 64 of them. Unique whatever their case. */
export const USERNAME_PATTERN = /^[A-Za-z0-9._-]{3,64}$/;

/** The problem with a new password, or null. */
export function passwordProblem(field: string, password: string): string | null {
  if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
    return `${field} must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters long`;
  }
  return null;
}

/** The problem with a new username, or null (the API's DTO says the same; this also covers the CLI and first boot). */
export function usernameProblem(username: string): string | null {
  return USERNAME_PATTERN.test(username)
    ? null
    : 'username must be 3 to 64 characters: letters, digits, dot, dash and underscore';
}
