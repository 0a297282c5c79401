import { useEffect } from 'react';

/** Sets the document title ("Silos · Tessera"), which screen readers announce on navigation. */
export function usePageTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Tessera`;
  }, [title]);
}
