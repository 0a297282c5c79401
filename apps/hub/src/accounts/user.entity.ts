import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

export type Role = 'admin' | 'auditor';
export const ROLES: readonly Role[] = ['admin', 'auditor'];

/** A person who signs in to the console or the API. Not an API type: see dto/. */
@Entity('users')
export class UserEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** Unique whatever its case (a unique index on lower(username)); kept as the administrator typed it. */
  @Column({ type: 'varchar', length: 64 })
  username!: string;

  /** argon2id encoded hash (salt and parameters included). */
  @Column({ name: 'password_hash', type: 'text' })
  passwordHash!: string;

  @Column({ type: 'enum', enum: ROLES, enumName: 'user_role' })
  role!: Role;

  @Column({ type: 'boolean', default: false })
  disabled!: boolean;

  /** Set with a temporary password from an administrator: the next session may only change the password. */
  @Column({ name: 'must_change_password', type: 'boolean', default: false })
  mustChangePassword!: boolean;

  /** The identity provider's issuer of the linked identity (ADR 0010, OIDC); set with `oidcSubject` or not at all. */
  @Column({ name: 'oidc_issuer', type: 'text', nullable: true })
  oidcIssuer!: string | null;

  /** The provider's `sub` for this person: stable, unlike an e-mail address or a display name. */
  @Column({ name: 'oidc_subject', type: 'text', nullable: true })
  oidcSubject!: string | null;

  @Column({ name: 'last_sign_in_at', type: 'timestamptz', nullable: true })
  lastSignInAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
