import { useEffect } from 'react';
import { useLocation } from 'react-router';

/** How long a page may take to render the section a link names (its data loads first), in ms. */
const WAIT_MS = 8_000;

/** The element a URL fragment names (`#chain-title`), if it is on the page. */
export function hashTarget(hash: string, root: Document = document): HTMLElement | null {
  if (hash.length < 2) return null;
  let id: string;
  try {
    id = decodeURIComponent(hash.slice(1));
  } catch {
    return null;
  }
  return root.getElementById(id);
}

/**
 * Scrolls to the section a deep link names once it exists. A single-page app renders the section after its data
 * arrives (and, for a link opened while signed out, after sign-in), long after the browser's own jump to the
 * fragment found nothing: so this waits for the element (up to WAIT_MS), then scrolls to it and moves focus there.
 */
export function useScrollToHash(): void {
  const { hash, key } = useLocation();
  useEffect(() => {
    if (hash.length < 2) return;
    let observer: MutationObserver | null = null;
    const reveal = (el: HTMLElement) => {
      observer?.disconnect();
      el.scrollIntoView({ block: 'start' });
      if (!el.hasAttribute('tabindex')) el.setAttribute('tabindex', '-1');
      el.focus({ preventScroll: true });
    };
    const found = hashTarget(hash);
    if (found) {
      reveal(found);
      return;
    }
    observer = new MutationObserver(() => {
      const el = hashTarget(hash);
      if (el) reveal(el);
    });
    observer.observe(document.body, { childList: true, subtree: true });
    const timer = window.setTimeout(() => observer?.disconnect(), WAIT_MS);
    return () => {
      observer?.disconnect();
      window.clearTimeout(timer);
    };
  }, [hash, key]);
}
