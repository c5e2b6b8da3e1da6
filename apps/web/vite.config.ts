import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The API the dev server forwards to; `devart start` listens here by default.
const api = process.env.DEVART_API_URL ?? 'http://127.0.0.1:8787';

export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // One chunk a route group would be nicer; until the bundle grows, one vendor chunk keeps the cache warm across releases.
    chunkSizeWarningLimit: 1500,
  },
  server: {
    host: '127.0.0.1',
    proxy: {
      '/api': { target: api, changeOrigin: false },
      '/health': api,
      '/ready': api,
      '/metrics': api,
    },
  },
});
