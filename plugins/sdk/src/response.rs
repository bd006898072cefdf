//! What a bot does in answer to a command: its replies and reactions, in order.

use crate::bindings::hearth::bot::types;

/// One thing a bot does in answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Post a message in the room as the bot; hearth cuts text longer than the room allows.
    Reply(String),
    /// React to the command's message with this emoji.
    React(String),
}

/// A bot's answer to one command: any number of replies and reactions, carried out in order.
///
/// ```
/// use hearth_bot_sdk::Response;
///
/// let done = Response::react("👍").and_reply("Saved.");
/// assert_eq!(done.replies().collect::<Vec<_>>(), ["Saved."]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    actions: Vec<Action>,
}

impl Response {
    /// An answer that does nothing visible.
    pub fn none() -> Self {
        Response::default()
    }

    /// One reply.
    pub fn reply(text: impl Into<String>) -> Self {
        Response::none().and_reply(text)
    }

    /// One reaction to the command's message.
    pub fn react(emoji: impl Into<String>) -> Self {
        Response::none().and_react(emoji)
    }

    /// This answer followed by a reply.
    pub fn and_reply(mut self, text: impl Into<String>) -> Self {
        self.actions.push(Action::Reply(text.into()));
        self
    }

    /// This answer followed by a reaction.
    pub fn and_react(mut self, emoji: impl Into<String>) -> Self {
        self.actions.push(Action::React(emoji.into()));
        self
    }

    /// The actions, in the order hearth carries them out.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// The text of each reply, in order: what a unit test usually compares.
    pub fn replies(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().filter_map(|action| match action {
            Action::Reply(text) => Some(text.as_str()),
            Action::React(_) => None,
        })
    }

    /// The actions, consumed.
    pub fn into_actions(self) -> Vec<Action> {
        self.actions
    }
}

/// A reply with this text.
impl From<String> for Response {
    fn from(text: String) -> Self {
        Response::reply(text)
    }
}

/// A reply with this text.
impl From<&str> for Response {
    fn from(text: &str) -> Self {
        Response::reply(text)
    }
}

impl From<Action> for types::Action {
    fn from(action: Action) -> Self {
        match action {
            Action::Reply(text) => types::Action::Reply(text),
            Action::React(emoji) => types::Action::React(emoji),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_keep_the_order_they_were_added_in() {
        let response = Response::reply("one").and_react("👍").and_reply("two");
        assert_eq!(
            response.actions(),
            [
                Action::Reply("one".into()),
                Action::React("👍".into()),
                Action::Reply("two".into()),
            ]
        );
        assert_eq!(response.replies().collect::<Vec<_>>(), ["one", "two"]);
    }

    #[test]
    fn none_has_no_actions_and_text_converts_to_one_reply() {
        assert!(Response::none().actions().is_empty());
        assert_eq!(Response::from("hi"), Response::reply("hi"));
        assert_eq!(
            Response::from(String::from("hi")).into_actions(),
            [Action::Reply("hi".into())]
        );
    }

    #[test]
    fn actions_map_onto_the_wit_variants() {
        assert!(matches!(
            types::Action::from(Action::Reply("a".into())),
            types::Action::Reply(text) if text == "a"
        ));
        assert!(matches!(
            types::Action::from(Action::React("👍".into())),
            types::Action::React(emoji) if emoji == "👍"
        ));
    }
}
