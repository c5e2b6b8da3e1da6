import { type ReactNode, useState } from 'react';
import { Link, NavLink } from 'react-router';
import { useAuth, useSession } from '../lib/auth';
import { useLiveStatus } from '../lib/live';

/** The navigation, in this order; W2's sections are here already (their pages live in pages/<section>/). */
export const navigation = [
  { to: '/', label: 'Overview', end: true },
  { to: '/tasks', label: 'Tasks' },
  { to: '/workflows', label: 'Workflows' },
  { to: '/agents', label: 'Agents' },
  { to: '/quarantine', label: 'Quarantine' },
  { to: '/stats', label: 'Stats' },
  { to: '/marketplace', label: 'Marketplace' },
] as const;

/** "Live" when the event stream is open, "Reconnecting…" otherwise; the reason is in the tooltip. */
export function LiveIndicator() {
  const { status, detail } = useLiveStatus();
  const live = status === 'live';
  const text = live ? 'Live' : status === 'connecting' ? 'Connecting…' : 'Reconnecting…';
  return (
    <span
      className={`live ${live ? 'live-on' : 'live-off'}`}
      role="status"
      aria-live="polite"
      title={live ? 'Updates arrive as they happen' : (detail ?? 'Opening the event stream')}
      data-testid="live-indicator"
    >
      <span className="live-dot" aria-hidden="true" />
      {text}
    </span>
  );
}

function WhoAmI() {
  const session = useSession();
  const { signOut } = useAuth();
  const who = session.email ?? session.subject.slice(0, 8);
  return (
    <div className="who">
      <span title={session.subject} data-testid="signed-in-user">
        {who} <span className="role">{session.role}</span>
      </span>
      <button type="button" className="button button-small" onClick={() => signOut()}>
        Sign out
      </button>
    </div>
  );
}

/** Header, navigation and the page; the menu folds behind a button at phone width. */
export function Layout({ children }: { children: ReactNode }) {
  const [menuOpen, setMenuOpen] = useState(false);
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="brand">
          <button
            type="button"
            className="button-icon menu-toggle"
            aria-expanded={menuOpen}
            aria-controls="primary-nav"
            aria-label="Menu"
            onClick={() => setMenuOpen((o) => !o)}
          >
            ☰
          </button>
          <Link to="/" className="brand-name">
            devart
          </Link>
          <LiveIndicator />
        </div>
        <nav id="primary-nav" aria-label="Main" className={menuOpen ? 'nav nav-open' : 'nav'}>
          {navigation.map((item) => (
            <NavLink key={item.to} to={item.to} end={'end' in item} onClick={() => setMenuOpen(false)}>
              {item.label}
            </NavLink>
          ))}
        </nav>
        <WhoAmI />
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}

/** The title row of a page: its h1 and, on the right, its actions. */
export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="page-header">
      <h1>{title}</h1>
      {children && <div className="actions">{children}</div>}
    </div>
  );
}
