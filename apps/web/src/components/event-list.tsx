import type { PlatformEvent } from '@devart/contracts';
import { Link } from 'react-router';
import { describeEvent, eventSubjectLink } from '../lib/events';
import { RelativeTime } from './time';

/**
 * Events as a feed, in the order given: when, the type, what it is about (a link unless
 * `withSubject` is false, e.g. on the subject's own page) and its few telling fields.
 */
export function EventList({
  events,
  label = 'Events',
  withSubject = true,
}: {
  events: readonly PlatformEvent[];
  label?: string;
  withSubject?: boolean;
}) {
  return (
    <ol className="feed" aria-label={label}>
      {events.map((e) => {
        const subject = withSubject ? eventSubjectLink(e) : null;
        return (
          <li key={e.id} data-event-type={e.type}>
            <RelativeTime iso={e.at} />
            <code>{e.type}</code>
            {subject && <Link to={subject.to}>{subject.text}</Link>}
            <span className="muted">{describeEvent(e)}</span>
          </li>
        );
      })}
    </ol>
  );
}
