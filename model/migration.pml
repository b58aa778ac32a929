/*
 * Decant's live-migration phase protocol, as src/migration/ implements it (docs/PROTOCOL.md
 * gives the argument in words; model/README.md maps every step to a file and function).
 * One key, preloaded at v1 on the current store; two replicas, each with a cached view of the
 * phase record, a lease, an acknowledged epoch and one client write (the write is admitted
 * again when the store fence refuses it); a controller that walks the phases with backfill,
 * verify and the fenced switch, and rolls back across the fence; at most one fault.
 *
 *   spin -a -DFAULT=n [-DBUGk=1] migration.pml && gcc -O2 -DCOLLAPSE -o pan pan.c && ./pan -m100000
 *
 * FAULT 0 none; 1 replica 0 crashes while its write is in flight (between any two of its steps); 2 replica 0 is partitioned
 * from the control store (its lease lapses, it is counted dead, later it heals); 3 replica 0
 * pauses beyond the TTL and resumes; 4 replica 0's wall clock is skewed beyond the TTL; 5 one
 * store call (a primary put or a secondary applyIfNewer) has an unknown outcome and may land
 * later unless the store fence refuses it; 6 the SetPhase caller dies in the middle of a fence.
 * BUGk=1 reverts the fix of finding k of issue 12 (the pre-fix code). The model's own findings
 * have fix macros: RBFIX (N1), READ_LEASE (N2), DEADFIX (N3), LEASEFIX (N4); see model/README.md.
 *
 * P1  at the end, in COMPLETE, the target holds the highest acknowledged version, with its value.
 * P2  no two different values are acknowledged with one version (assertion at each ack).
 * P3  a read, on any replica at any moment, on the store its view says, returns the highest
 *     acknowledged write or a later one (the never claim: a reader that may read at every step).
 */

#ifndef FAULT
#define FAULT 0
#endif
#ifndef BUG1
#define BUG1 0
#endif
#ifndef BUG2
#define BUG2 0
#endif
#ifndef BUG3
#define BUG3 0
#endif
#ifndef BUG4
#define BUG4 0
#endif
#ifndef BUG5
#define BUG5 0
#endif
#ifndef BUG6
#define BUG6 0
#endif
/* N1: a rollback from READ_TARGET to SINGLE first goes to SHADOW_READ and waits until it is
   active, so no replica still reads the target once writes stop reaching it. */
#ifndef RBFIX
#define RBFIX 0
#endif
/* N2: reads check the lease like writes (a replica with a lapsed view serves no reads). Without
   it, as in the code (freshView), a read with a lapsed lease renews the view first when the
   control store answers, and goes by the stale view when it does not (partitioned). */
#ifndef READ_LEASE
#define READ_LEASE 0
#endif
/* N3: a dead owner's entries are repaired only by the drain of a fenced switch (after the old
   primary's store fence is up), so a late write of the dead owner cannot land after its repair;
   the READ_TARGET gate does not wait for them (that write was never acknowledged). */
#ifndef DEADFIX
#define DEADFIX 0
#endif
/* N4: the lease re-check after the primary write asks whether the lease lapsed at any time
   since admission, not whether it is held now (a tick after a pause renews it meanwhile). */
#ifndef LEASEFIX
#define LEASEFIX 0
#endif
/* A rollback to SINGLE from SHADOW_READ and a second, forced attempt (finding 5's path). */
#ifndef RESTART
#define RESTART 0
#endif
/* The walk goes TARGET_PRIMARY -> READ_TARGET (fenced) and then on again or back to SINGLE. */
/* The stores cannot fence (DynamoDB: capabilities.fencing is false). */
#ifndef NOFENCE
#define NOFENCE 0
#endif
/* How often a write refused by the store fence is admitted again (the code: 2). */
#ifndef RETRIES
#define RETRIES 1
#endif
#ifndef ROLLBACK
#define ROLLBACK 1
#endif

#define NR 2
#define CUR 0
#define TGT 1

#define SINGLE 0
#define DUAL 1
#define SHADOW 2
#define RT 3
#define TP 4
#define COMPLETE 5

/* phases.ts ROLES */
#define PRIM(p)   (((p) <= RT) -> CUR : TGT)
#define HASSEC(p) ((p) != SINGLE && (p) != COMPLETE)
#define SEC(p)    (((p) <= RT) -> TGT : CUR)
#define READS(p)  (((p) <= SHADOW) -> CUR : TGT)
/* controller.ts strictSecondary: a failed secondary write fails the request */
#define STRICT(p) (BUG4 -> ((p) == RT) : ((p) == SHADOW || (p) == RT))

/* ---- data stores: the key's version and value, and the store-side fence epoch ---- */
byte stv[2];
byte sval[2];
byte sfence[2];

/* ---- control store ---- */
byte rphase = SINGLE;   /* phase record */
byte repoch = 0;
bool rfence = 0;
bool rexpired = 0;      /* the fence has stood long enough to be taken for abandoned */
byte rattempt = 0;
byte hack[NR];          /* heartbeat: acknowledged epoch */
byte hfail[NR];         /* heartbeat: failure stamp (verify generation of the last failure) */
bool jr[NR];            /* repair journal: writer r's intent (BUG2: its failure entry) */
byte bfatt;             /* backfill record: attempt whose backfill is done */
byte vratt;             /* verify record: attempt, epoch it ran in, result, failure snapshot */
byte vrep;
bool vrok;
byte vrgen;
byte vgen = 1;

/* ---- replica-local ---- */
byte vphase[NR];        /* cached view */
byte vepoch[NR];
bool vfence[NR];
bool stale[NR];         /* lease lapsed on its own monotonic clock */
bool busy[NR];          /* a write in flight ... */
bool lapsed[NR];        /* ... whose lease lapsed since its admission */
byte admep[NR];         /* ... admitted under this epoch */
byte lfail[NR];         /* failure stamp (persisted) */

/* ---- faults, all on replica 0 (the replicas are symmetric) ---- */
bool faulted;
bool crashed[NR];
bool paused[NR];
bool parted[NR];
bool dead[NR];          /* as the observers judge it */
bool skewed;
bool pend;              /* an ambiguous request on its way to a store */
bit  pkind;             /* 0 primary put (carries its epoch), 1 secondary applyIfNewer */
byte powner;
byte pstore;
byte pep;
byte pver;
byte pval;

/* ---- what clients were told ---- */
short ackedmask = 2;    /* acknowledged versions; v1 is the preloaded value 9 */
byte maxack = 1;
byte maxval = 9;
bool go;

#define ISACTIVE(e) ((dead[0] || hack[0] >= (e)) && (dead[1] || hack[1] >= (e)))
#define HOLDS(s)    (stv[s] > maxack || (stv[s] == maxack && sval[s] == maxval))
#define UP(r)       (!paused[r])
#define MYPEND(r)   (pend && powner == (r))
/* tick/canAcknowledge: no write of an older epoch in flight here (BUG1: only during a fence) */
#define ACKOK(r)    (BUG1 -> (!rfence || !busy[r]) : !(busy[r] && admep[r] < repoch))
/* repairable: own settled entries once a late landing is over, or a dead owner's (BUG2: any) */
#define REPAIRABLE(r, e) (jr[e] && (BUG2 || ((e) == (r) && !busy[r] && !MYPEND(r)) || (!DEADFIX && (e) != (r) && dead[e])))
/* journalDepth: entries waiting for repair (settled, or a dead owner's) */
#define SETTLED(e)  (jr[e] && (DEADFIX -> (!busy[e] && !dead[e]) : (!busy[e] || dead[e])))
#define FENCING     (!BUG3 && !NOFENCE)

/* the client is told v: P2 is checked here */
inline tell() {
  printf("@ w%d ACK v%d val%d\n", r, v, val);
  assert(!(ackedmask & (1 << v)));
  ackedmask = ackedmask | (1 << v);
  if
  :: v > maxack -> maxack = v; maxval = val
  :: else -> skip
  fi
}

/* ------------------------------------------------- writer: migrating-store.ts write/writeOnce */
proctype writer(byte r; byte val) {
  byte ph, ep, P, S, v, tries;
  bool ok;
admit:   /* admitWrite: lease, fence (held until it lifts), counted in flight under its epoch */
  atomic { UP(r) && (crashed[r] || stale[r] || !vfence[r]) ->
    if
    :: crashed[r] || stale[r] -> goto gone
    :: else -> busy[r] = 1; lapsed[r] = 0; ph = vphase[r]; ep = vepoch[r]; admep[r] = ep; P = PRIM(ph); S = SEC(ph);
       printf("@ w%d admitted ph%d e%d\n", r, ph, ep)
    fi }
  if     /* writeIntent: before the primary write whenever there is a secondary */
  :: HASSEC(ph) && !BUG2 ->
    atomic { UP(r) ->
      if
      :: crashed[r] -> goto gone
      :: parted[r] ->                    /* journal unwritable: refused, nothing written; the */
         if                              /* intent may have landed: settled, repaired later */
         :: jr[r] = 1
         :: skip
         fi;
         goto done
      :: else -> jr[r] = 1
      fi }
  :: else -> skip
  fi;
  /* the primary write, carrying its epoch: the store assigns stored+1 or refuses (fenced) */
  atomic { UP(r) ->
    if
    :: crashed[r] -> goto gone
    :: else -> skip
    fi;
    if
    :: FAULT == 5 && !faulted ->
       faulted = 1; pend = 1; pkind = 0; powner = r; pstore = P; pep = ep; pval = val;
       printf("@ w%d primary s%d UNKNOWN\n", r, P);
       goto failed                         /* leaveForRepair(ambiguous); error to the client */
    :: true ->
      if
      :: FENCING && sfence[P] > ep ->
         printf("@ w%d primary s%d fenced\n", r, P);
         if :: !parted[r] -> jr[r] = 0 :: else -> skip fi;   /* dropIntent */
         busy[r] = 0;
         if :: tries < RETRIES -> tries++; goto admit :: else -> goto gone fi
      :: else -> stv[P] = stv[P] + 1; sval[P] = val; v = stv[P]; printf("@ w%d primary s%d v%d\n", r, P, v)
      fi
    fi }
  /* the lease re-check after the primary write (step 7), then replicate: applyIfNewer on the
     secondary, where a refusal is fine only if it holds the same item or a newer one (one
     step: nothing another process can see happens between them) */
  atomic { UP(r) ->
    if
    :: crashed[r] -> goto gone
    :: else -> skip
    fi;
    if
    :: !BUG3 && (stale[r] || (LEASEFIX && lapsed[r])) -> printf("@ w%d lease lapsed during the write\n", r); goto failed
    :: else -> skip
    fi;
    if
    :: !HASSEC(ph) -> tell(); busy[r] = 0; goto gone
    :: else -> skip
    fi;
    if
    :: FAULT == 5 && !faulted ->
       faulted = 1; pend = 1; pkind = 1; powner = r; pstore = S; pver = v; pval = val; ok = 0;
       printf("@ w%d secondary s%d UNKNOWN\n", r, S)
    :: true ->
      if
      :: v > stv[S] -> stv[S] = v; sval[S] = val; ok = 1; printf("@ w%d secondary s%d v%d\n", r, S, v)
      :: else -> ok = BUG2 || stv[S] > v || sval[S] == val;          /* holdsSame */
         printf("@ w%d secondary s%d refused (holds v%d)\n", r, S, stv[S])
      fi
    fi;
    if
    :: ok -> if :: !parted[r] && !BUG2 -> jr[r] = 0 :: else -> skip fi;   /* clearIntent */
       tell(); busy[r] = 0; goto gone
    :: else -> lfail[r] = vgen
    fi }
  if
  :: BUG2 ->                               /* pre-fix recordSecondaryFailure: journal only now */
    atomic { UP(r) ->
      if
      :: crashed[r] -> goto gone
      :: parted[r] -> goto done
      :: else -> jr[r] = 1
      fi }
  :: else -> skip
  fi;
  if
  :: STRICT(ph) -> goto failed
  :: else -> goto ack
  fi;
ack:
  atomic { tell(); busy[r] = 0 }
  goto gone;
failed:  /* leaveForRepair: the intent stays, marked failed (rewritten if someone removed it) */
  if
  :: HASSEC(ph) && !BUG2 -> atomic { lfail[r] = vgen; if :: !parted[r] -> jr[r] = 1 :: else -> skip fi }
  :: else -> skip
  fi;
done:
  busy[r] = 0;
gone:
  skip
}

/* ------------------------------------------ replica: controller.ts tick and housekeeping */
proctype replica(byte r) {
  byte e, rph, rv, rvl;
end_loop:
  do
  :: crashed[r] -> break
  /* tick: read the record, acknowledge if allowed, heartbeat, renew the lease (a tick that
     changes nothing is not taken: it would only repeat a state) */
  :: atomic { UP(r) && !crashed[r] && !parted[r] &&
              (vepoch[r] != repoch || stale[r] || dead[r] || hfail[r] != lfail[r] ||
               (ACKOK(r) && hack[r] != repoch)) ->
       vphase[r] = rphase; vepoch[r] = repoch; vfence[r] = rfence;
       if
       :: ACKOK(r) && hack[r] != repoch -> hack[r] = repoch; printf("@ r%d acks e%d\n", r, repoch)
       :: else -> skip
       fi;
       hfail[r] = lfail[r]; stale[r] = 0;
       if
       :: !(BUG3 && skewed && r == 0) -> dead[r] = 0    /* its heartbeat changed: live again */
       :: else -> skip
       fi }
  /* clearAbandonedFence (BUG6: no such thing) */
  :: atomic { !BUG6 && UP(r) && !crashed[r] && !parted[r] && rfence && rexpired ->
       repoch++; rfence = 0; rexpired = 0; printf("@ r%d rolls back an abandoned fence, e%d\n", r, repoch) }
  /* repairJournal: read the primary's raw item, then applyIfNewer on the secondary, remove */
  :: atomic { UP(r) && !crashed[r] && !parted[r] && (REPAIRABLE(r, 0) || REPAIRABLE(r, 1)) ->
       if
       :: REPAIRABLE(r, 0) -> e = 0
       :: REPAIRABLE(r, 1) -> e = 1
       fi;
       rph = vphase[r]; rv = stv[PRIM(rph)]; rvl = sval[PRIM(rph)] }
     atomic { UP(r) ->
       if
       :: crashed[r] || parted[r] -> skip
       :: else ->
         if
         :: HASSEC(rph) && rv > stv[SEC(rph)] -> stv[SEC(rph)] = rv; sval[SEC(rph)] = rvl
         :: else -> skip
         fi;
         jr[e] = 0; printf("@ r%d repairs j%d (v%d)\n", r, e, rv)
       fi }
  od
}

/* --------------------------------------------- controller: controller.ts setPhase and friends */
inline commit(to) {
  repoch++; rphase = to; printf("@ phase %d e%d\n", to, repoch)
}

inline repair_all(ph) {   /* repairJournal(ph, all) */
  do
  :: atomic { (jr[0] || jr[1]) ->
       if
       :: jr[0] -> e = 0
       :: jr[1] -> e = 1
       fi;
       rv = stv[PRIM(ph)]; rvl = sval[PRIM(ph)] }
     atomic {
       if
       :: HASSEC(ph) && rv > stv[SEC(ph)] -> stv[SEC(ph)] = rv; sval[SEC(ph)] = rvl
       :: else -> skip
       fi;
       jr[e] = 0; printf("@ drain j%d (v%d)\n", e, rv) }
  :: else -> break
  od
}

/* fencedSwitch: commit the fence, raise the old primary's store fence, wait for every live
   replica's acknowledgement (or give up at the deadline), drain, commit; a failure rolls back */
inline fenced(from, to) {
  atomic { repoch++; rfence = 1; rexpired = 0; fe = repoch; printf("@ fence e%d before %d\n", fe, to) }
  if
  :: FAULT == 6 && !faulted -> faulted = 1; printf("@ FAULT the fencer dies\n"); goto cend
  :: true -> skip
  fi;
  if
  :: FENCING -> atomic { sfence[PRIM(from)] = fe; printf("@ store fence s%d e%d\n", PRIM(from), fe) }
  :: else -> skip
  fi;
  if
  :: ISACTIVE(fe) -> ok = 1
  :: rexpired -> ok = 0
  fi;
  if
  :: ok ->
     repair_all(from);
     atomic {
       if
       :: !jr[0] && !jr[1] && rfence && repoch == fe -> commit(to); rfence = 0
       :: else -> ok = 0
       fi }
  :: else -> skip
  fi;
  if
  :: !ok -> atomic {
       if
       :: rfence && repoch == fe -> repoch++; rfence = 0; printf("@ fence rolled back, e%d\n", repoch)
       :: else -> skip
       fi }
  :: else -> skip
  fi
}

proctype controller() {
  byte fe, e, rv, rvl, shep, cv, cvl, tv, tvl;
  bool ok;
attempt:
  /* SINGLE -> DUAL_WRITE: empty target (force), new attempt, backfill and verify records gone */
  atomic {
    stv[TGT] = 0; sval[TGT] = 0;
    rattempt++;
    if
    :: !BUG5 -> bfatt = 0; vratt = 0
    :: else -> skip
    fi;
    commit(DUAL); e = repoch }
  /* then the current store's fence: a SINGLE write still on its way is refused */
  if
  :: FENCING -> atomic { sfence[CUR] = e; printf("@ store fence s0 e%d\n", e) }
  :: else -> skip
  fi;
  ISACTIVE(e);            /* backfill.ts start: only once DUAL_WRITE is active */
  if
  :: rattempt > 1 -> skip /* the operator does not run it again (finding 5's path) */
  :: true ->
     atomic { rv = stv[CUR]; rvl = sval[CUR] }                  /* scanRaw */
     atomic {                                                  /* applyIfNewer; done */
       if
       :: rv > stv[TGT] -> stv[TGT] = rv; sval[TGT] = rvl
       :: else -> skip
       fi;
       bfatt = rattempt; printf("@ backfill copies v%d\n", rv) }
  fi;
  atomic { commit(SHADOW); shep = repoch }
  /* verify.ts: compare (a difference fails it: the re-checks are not modelled); the record
     names the attempt, the epoch and the failure counts it started with */
  if
  :: rattempt > 1 -> skip /* nor verify */
  :: true ->
     atomic { vgen++; cv = stv[CUR]; cvl = sval[CUR] }        /* the source, then the copy */
     atomic { tv = stv[TGT]; tvl = sval[TGT] }
     atomic { vratt = rattempt; vrep = shep; vrok = (cv == tv && cvl == tvl); vrgen = vgen;
              printf("@ verify equal=%d\n", vrok) }
  fi;
  if
  :: RESTART && rattempt == 1 ->           /* roll back to SINGLE, start again with force */
     atomic { commit(SINGLE); vratt = 0; jr[0] = 0; jr[1] = 0 }
     goto attempt
  :: true -> skip
  fi;
  /* SHADOW_READ -> READ_TARGET: SHADOW_READ active (fix 4), checkVerified */
  if
  :: !BUG4 -> ISACTIVE(shep)
  :: else -> skip
  fi;
  atomic {
    if
    :: vrok && hfail[0] < vrgen && hfail[1] < vrgen && !SETTLED(0) && !SETTLED(1) &&
       (BUG5 || (vratt == rattempt && bfatt == rattempt)) && (BUG4 || BUG5 || vrep == shep) -> commit(RT)
    :: else -> printf("@ READ_TARGET refused\n"); goto cend
    fi }
  fenced(RT, TP);
  if
  :: !ok -> goto cend
  :: else -> skip
  fi;
  if
  :: ROLLBACK ->
     fenced(TP, RT);
     if
     :: !ok -> goto cend
     :: else -> skip
     fi;
     if
     :: true ->                             /* READ_TARGET -> SINGLE: the primary stays */
        if
        :: RBFIX -> atomic { commit(SHADOW); shep = repoch }; ISACTIVE(shep)
        :: else -> skip
        fi;
        atomic { commit(SINGLE); vratt = 0 }
        repair_all(SINGLE);
        goto cend
     :: true ->
        fenced(RT, TP);
        if
        :: !ok -> goto cend
        :: else -> skip
        fi
     fi
  :: true -> skip
  fi;
  /* TARGET_PRIMARY -> COMPLETE: drain, refuse if anything is left, commit, clear */
  repair_all(TP);
  atomic {
    if
    :: !jr[0] && !jr[1] -> commit(COMPLETE)
    :: else -> printf("@ COMPLETE refused\n")
    fi }
cend:
  skip
}

/* ---------------------------------------------------- reads: migrating-store.ts get (P3) */
#define CANREAD(r) (!paused[r] && !crashed[r] && !(READ_LEASE && stale[r]))
#define READVIEW(r) ((stale[r] && !parted[r]) -> rphase : vphase[r])
#define P3 (!go || ((!CANREAD(0) || HOLDS(READS(READVIEW(0)))) && (!CANREAD(1) || HOLDS(READS(READVIEW(1))))))
never {
  do
  :: !P3 -> break
  :: else -> skip
  od
}

/* ------------------------------------------------------ faults, time, late requests */
proctype env() {
end_env:
  do
  :: atomic { FAULT == 1 && !faulted && busy[0] -> faulted = 1; crashed[0] = 1; dead[0] = 1; printf("@ FAULT r0 crashes\n") }
  :: atomic { FAULT == 2 && !faulted -> faulted = 1; parted[0] = 1; printf("@ FAULT r0 partitioned\n") }
  :: atomic { FAULT == 3 && !faulted -> faulted = 1; paused[0] = 1; printf("@ FAULT r0 paused\n") }
  :: atomic { FAULT == 4 && !faulted -> faulted = 1; skewed = 1; printf("@ FAULT r0 clock skewed\n") }
  /* no heartbeat change for the TTL (> lease + store timeout): its lease has lapsed and its
     last call has settled (pre-fix the margin is one store timeout, so a call may be out) */
  :: atomic { !dead[0] && (parted[0] || paused[0]) && (BUG3 || !MYPEND(0)) ->
       stale[0] = 1; lapsed[0] = 1; dead[0] = 1; printf("@ r0 lease lapsed, counted dead\n") }
  :: atomic { parted[0] && !stale[0] -> stale[0] = 1; lapsed[0] = 1; printf("@ r0 lease lapsed\n") }
  /* pre-fix liveness compares its heartbeat timestamp with the observer's clock */
  :: atomic { BUG3 && skewed && !dead[0] -> dead[0] = 1; printf("@ r0 counted dead (skewed timestamp)\n") }
  :: atomic { paused[0] && dead[0] -> paused[0] = 0; printf("@ r0 resumes\n") }
  :: atomic { parted[0] && dead[0] -> parted[0] = 0; printf("@ r0 partition heals\n") }
  /* the unknown request lands late (a put below the store fence is refused), or never */
  :: atomic { pend -> pend = 0;
       if
       :: pkind == 0 && (!FENCING || sfence[pstore] <= pep) ->
          stv[pstore] = stv[pstore] + 1; sval[pstore] = pval; printf("@ late put lands s%d v%d\n", pstore, stv[pstore])
       :: pkind == 1 && pver > stv[pstore] ->
          stv[pstore] = pver; sval[pstore] = pval; printf("@ late apply lands s%d v%d\n", pstore, pver)
       :: else -> printf("@ late request refused\n")
       fi }
  :: atomic { pend -> pend = 0; printf("@ late request lost\n") }
  /* the fence's deadline passes (only with FAULT 6: elsewhere every live replica acknowledges) */
  :: atomic { FAULT == 6 && rfence && !rexpired -> rexpired = 1; printf("@ fence deadline passes\n") }
  :: timeout ->
     /* quiescent: no fence stands forever (finding 6), and P1 */
     assert(!rfence);
     assert(rphase != COMPLETE || HOLDS(TGT));
     break
  od
}

init {
  atomic {
    stv[CUR] = 1; sval[CUR] = 9;
    go = 1;
    run env();
    run controller();
    run replica(0); run replica(1);
    run writer(0, 1); run writer(1, 2)
  }
}
