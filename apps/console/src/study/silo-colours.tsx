import { useQuery } from '@tanstack/react-query';
import { createContext, useContext, useMemo, type ReactNode } from 'react';
import { useApi } from '../auth/session-context.js';
import { siloColours, UNLISTED_SILO_COLOURS, type SiloColours } from '../lib/silo-colour.js';

/** The colours in force below a provider; tests give it a value directly. */
export const SiloColoursContext = createContext<SiloColours>(UNLISTED_SILO_COLOURS);

/**
 * Gives the pages below it each silo's colour from the hub's whole silo list (registration order; see
 * lib/silo-colour.ts), so a hospital has the same colour in every study and silos shown together differ. Until the
 * list arrives, colours come from the ids alone.
 */
export function SiloColoursProvider({ children }: { children: ReactNode }) {
  const api = useApi();
  // The silos page's query: one list in the cache, refreshed by whichever page polls it.
  const silos = useQuery({ queryKey: ['silos'], queryFn: () => api.silos(), staleTime: 60_000 });
  const colours = useMemo(() => (silos.data ? siloColours(silos.data) : UNLISTED_SILO_COLOURS), [silos.data]);
  return <SiloColoursContext.Provider value={colours}>{children}</SiloColoursContext.Provider>;
}

/** The colours of the nearest SiloColoursProvider (ids alone without one). */
export function useSiloColours(): SiloColours {
  return useContext(SiloColoursContext);
}
