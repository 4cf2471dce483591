import Synchronization

/// A value made by the first task that asks for it; tasks that ask while it is
/// being made wait for that one instead of making it again (a single flight).
final class Once<Value: Sendable>: Sendable {
    private enum State {
        case empty
        case making(waiters: [CheckedContinuation<Value, Never>])
        case made(Value)
    }

    private let state = Mutex(State.empty)

    init() {}

    /// The value, made by `make` if no task has made it or is making it.
    func value(_ make: () async -> Value) async -> Value {
        let first = state.withLock { state -> Value?? in
            switch state {
            case .made(let value): return .some(value)
            case .making: return .some(nil)
            case .empty:
                state = .making(waiters: [])
                return nil
            }
        }
        switch first {
        case .some(.some(let value)):
            return value
        case .some(.none):
            return await withCheckedContinuation { continuation in
                let made = state.withLock { state -> Value? in
                    switch state {
                    case .made(let value): return value
                    case .making(let waiters):
                        state = .making(waiters: waiters + [continuation])
                        return nil
                    case .empty: preconditionFailure("a value being made went back to empty")
                    }
                }
                if let made { continuation.resume(returning: made) }
            }
        case .none:
            let value = await make()
            let waiters = state.withLock { state -> [CheckedContinuation<Value, Never>] in
                defer { state = .made(value) }
                if case .making(let waiters) = state { return waiters }
                return []
            }
            for waiter in waiters { waiter.resume(returning: value) }
            return value
        }
    }
}
