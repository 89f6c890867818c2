/**
 * A small dropdown of actions: `<Menu label="…" items={[{ label, onClick }]} />`.
 *
 * The list is rendered in a portal with fixed positioning (under the button, right-aligned,
 * kept inside the viewport, above the button when there is no room below), so a scrolling
 * container such as `.table-wrap` does not clip it. Inside a modal `<dialog>` the portal
 * goes into the dialog, which sits in the top layer.
 */
import { useCallback, useEffect, useLayoutEffect, useRef, useState, type ReactNode } from "react";
import { createPortal } from "react-dom";
import styles from "./Menu.module.css";

export interface MenuItem {
  label: ReactNode;
  onClick: () => void;
  testId?: string;
}

const GAP = 4;
const MARGIN = 4;

export function Menu({ label, items, testId }: { label: ReactNode; items: MenuItem[]; testId?: string }) {
  const [open, setOpen] = useState(false);
  const [position, setPosition] = useState<{ top: number; left: number } | null>(null);
  const buttonRef = useRef<HTMLButtonElement>(null);
  const listRef = useRef<HTMLDivElement>(null);

  const place = useCallback(() => {
    const button = buttonRef.current;
    const list = listRef.current;
    if (!button || !list) return;
    const anchor = button.getBoundingClientRect();
    const width = list.offsetWidth;
    const height = list.offsetHeight;
    const left = Math.max(MARGIN, Math.min(anchor.right - width, window.innerWidth - width - MARGIN));
    let top = anchor.bottom + GAP;
    if (top + height > window.innerHeight - MARGIN && anchor.top - GAP - height >= MARGIN) {
      top = anchor.top - GAP - height;
    }
    setPosition({ top, left });
  }, []);

  useLayoutEffect(() => {
    if (open) place();
    else setPosition(null);
  }, [open, place]);

  useEffect(() => {
    if (!open) return;
    const close = (event: MouseEvent) => {
      const target = event.target as Node;
      if (buttonRef.current?.contains(target) || listRef.current?.contains(target)) return;
      setOpen(false);
    };
    const escape = (event: KeyboardEvent) => {
      if (event.key !== "Escape") return;
      setOpen(false);
      buttonRef.current?.focus();
    };
    document.addEventListener("mousedown", close);
    document.addEventListener("keydown", escape);
    // Any scrolling container (capture) or the window moves the button: follow it.
    window.addEventListener("scroll", place, true);
    window.addEventListener("resize", place);
    return () => {
      document.removeEventListener("mousedown", close);
      document.removeEventListener("keydown", escape);
      window.removeEventListener("scroll", place, true);
      window.removeEventListener("resize", place);
    };
  }, [open, place]);

  const host = open ? (buttonRef.current?.closest("dialog") ?? document.body) : null;
  return (
    <div className={styles.menu}>
      <button
        ref={buttonRef}
        type="button"
        className="btn btn-small"
        aria-haspopup="menu"
        aria-expanded={open}
        onClick={() => setOpen((value) => !value)}
        data-testid={testId}
      >
        {label} ▾
      </button>
      {open && host
        ? createPortal(
            <div
              ref={listRef}
              className={styles.list}
              role="menu"
              style={position ? { top: position.top, left: position.left } : { visibility: "hidden", top: 0, left: 0 }}
            >
              {items.map((item, index) => (
                <button
                  key={index}
                  type="button"
                  role="menuitem"
                  className={styles.item}
                  data-testid={item.testId}
                  onClick={() => {
                    setOpen(false);
                    item.onClick();
                  }}
                >
                  {item.label}
                </button>
              ))}
            </div>,
            host,
          )
        : null}
    </div>
  );
}
