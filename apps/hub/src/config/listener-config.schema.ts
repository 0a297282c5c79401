// The hub's three listeners (console/API, silo mTLS, enrollment), the names in its certificate, and its CA.

import { z } from 'zod';
import { port, positiveInt, variable } from './config-variable.util';

export const LISTENER_VARIABLES = {
  host: variable({
    name: 'TESSERA_HOST',
    description: 'Address the console/API listener binds to.',
    default: '127.0.0.1',
    secret: false,
    schema: z.string().min(1),
  }),
  port: variable({
    name: 'TESSERA_PORT',
    description: 'Port of the console/API listener (people: administrators and auditors). 0 picks a free port.',
    default: '8080',
    secret: false,
    schema: port,
  }),
  siloHost: variable({
    name: 'TESSERA_SILO_HOST',
    description: 'Address the silo listener (mutual TLS, agents only) binds to.',
    default: '127.0.0.1',
    secret: false,
    schema: z.string().min(1),
  }),
  siloPort: variable({
    name: 'TESSERA_SILO_PORT',
    description: 'Port of the silo listener (mutual TLS). 0 picks a free port.',
    default: '8443',
    secret: false,
    schema: port,
  }),
  publicSiloUrl: variable({
    name: 'TESSERA_PUBLIC_SILO_URL',
    description:
      'URL agents use to reach the silo listener, written into enrollment bundles. Defaults to https://<TESSERA_SILO_HOST>:<port>.',
    secret: false,
    schema: z.string().url().optional(),
  }),
  enrollHost: variable({
    name: 'TESSERA_ENROLL_HOST',
    description: 'Address the enrollment listener (TLS with the hub certificate, no client certificate) binds to.',
    default: '127.0.0.1',
    secret: false,
    schema: z.string().min(1),
  }),
  enrollPort: variable({
    name: 'TESSERA_ENROLL_PORT',
    description:
      'Port of the enrollment listener, where an agent trades its one-time token and CSR for a certificate. 0 picks a free port.',
    default: '8444',
    secret: false,
    schema: port,
  }),
  publicEnrollUrl: variable({
    name: 'TESSERA_PUBLIC_ENROLL_URL',
    description:
      'URL agents use to reach the enrollment listener, written into enrollment bundles. Defaults to https://<TESSERA_ENROLL_HOST>:<port>.',
    secret: false,
    schema: z.string().url().optional(),
  }),
  serverNames: variable({
    name: 'TESSERA_SERVER_NAMES',
    description:
      'Comma-separated DNS names and IP addresses put in the hub TLS certificate the hub makes for itself (agents check them).',
    default: 'localhost,127.0.0.1,::1',
    secret: false,
    schema: z
      .string()
      .min(1)
      .transform((v) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ),
  }),
  caKeyPassphrase: variable({
    name: 'TESSERA_CA_KEY_PASSPHRASE',
    description:
      'Passphrase that encrypts the silo CA private key at rest (at least 16 characters). Unset: one is generated into TESSERA_DATA_DIR/secrets/ca.passphrase (mode 0600) — set it in production and keep it apart from database backups.',
    secret: true,
    schema: z.string().min(16, 'must be at least 16 characters').optional(),
  }),
  caCertificateFile: variable({
    name: 'TESSERA_CA_CERT_FILE',
    description:
      'Use this silo CA certificate (PEM) instead of the one the hub makes on first boot. Needs TESSERA_CA_KEY_FILE.',
    secret: false,
    schema: z.string().min(1).optional(),
  }),
  caKeyFile: variable({
    name: 'TESSERA_CA_KEY_FILE',
    description:
      'Private key of TESSERA_CA_CERT_FILE: an encrypted PKCS#8 PEM, decrypted with TESSERA_CA_KEY_PASSPHRASE.',
    secret: false,
    schema: z.string().min(1).optional(),
  }),
  siloCertificateDays: variable({
    name: 'TESSERA_SILO_CERT_DAYS',
    description: 'Lifetime of a silo client certificate in days; agents renew when a third of it remains.',
    default: '30',
    secret: false,
    schema: positiveInt.max(397),
  }),
  enrollmentTokenHours: variable({
    name: 'TESSERA_ENROLLMENT_TOKEN_HOURS',
    description: 'How long a one-time enrollment token stays usable, in hours.',
    default: '24',
    secret: false,
    schema: positiveInt.max(24 * 30),
  }),
} as const;
