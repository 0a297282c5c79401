import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { HubErrorCode, HubException } from './hub.exception';

/** Flattens class-validator errors into one message per problem, naming the field path. */
export function validationMessages(errors: ValidationError[], parent = ''): string[] {
  const out: string[] = [];
  for (const e of errors) {
    const path = parent ? `${parent}.${e.property}` : e.property;
    for (const [rule, msg] of Object.entries(e.constraints ?? {})) {
      if (rule === 'unknownValue') {
        // class-validator's words for a body that is an array or a bare value where an object is expected.
        out.push('the request body must be a JSON object');
        continue;
      }
      out.push(rule === 'whitelistValidation' ? `unknown field "${path}"` : msg.replace(e.property, path));
    }
    if (e.children?.length) out.push(...validationMessages(e.children, path));
  }
  return out;
}

/** The global pipe: known fields only, types converted explicitly, every problem reported at once. */
export function hubValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    stopAtFirstError: false,
    exceptionFactory: (errors) => {
      const problems = validationMessages(errors);
      return new HubException(HubErrorCode.VALIDATION_FAILED, problems.join('; '), problems);
    },
  });
}
