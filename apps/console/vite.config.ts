import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defaultClientConditions, defineConfig } from 'vite';

const root = resolve(__dirname);

/**
 * The console is built into static files that the hub serves at `/` under its Content-Security-Policy
 * (`script-src 'self'`, no outside host): no inline scripts, no CDN, every asset local.
 */
export default defineConfig({
  root,
  base: '/',
  plugins: [react()],
  // Libraries resolve to their TypeScript sources through the "@tessera/source" export condition of their
  // package.json (the same condition vitest and the type checker use); none of them imports a Node built-in.
  resolve: { conditions: ['@tessera/source', ...defaultClientConditions] },
  build: {
    outDir: resolve(root, 'dist'),
    emptyOutDir: true,
    sourcemap: true,
    // Inlined assets would be data: URLs; keep every asset a file of its own.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      output: {
        // Libraries change less often than the console: separate files stay cached across console releases.
        manualChunks(id) {
          if (!id.includes('node_modules')) return undefined;
          if (
            /[\\/](recharts|d3-[^\\/]+|victory-vendor|decimal\.js-light|es-toolkit|immer|reselect|@reduxjs|react-redux|redux)[\\/]/.test(
              id,
            )
          ) {
            return 'charts';
          }
          if (/[\\/](react|react-dom|react-router|scheduler|@tanstack)[\\/]/.test(id)) return 'react';
          return 'vendor';
        },
      },
      onwarn(warning, warn) {
        // zod's sources carry /* @__PURE__ */ comments in places Rollup ignores; harmless.
        if (warning.code === 'INVALID_ANNOTATION') return;
        warn(warning);
      },
    },
  },
  server: { port: 5173, strictPort: true, proxy: { '/api': 'http://127.0.0.1:8080' } },
});
