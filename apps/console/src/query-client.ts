import { QueryClient } from '@tanstack/react-query';
import { ApiError } from './api/api-error.js';

/** Retries only what may heal by itself (network trouble, 5xx); a 4xx answer will not change on a retry. */
export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 5_000,
        retry: (failures, error) =>
          failures < 2 && !(error instanceof ApiError && error.status >= 400 && error.status < 500),
      },
      mutations: { retry: false },
    },
  });
}
