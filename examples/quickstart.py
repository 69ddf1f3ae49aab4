from typing import Literal

from callgate import Agent, tool
from callgate.testing import ScriptedModel, call


@tool(read_only=True)
def get_weather(city: str, units: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Current weather for a city.

    Args:
        city: City name, e.g. "Paris".
        units: Temperature units.
    """
    return {"city": city, "temperature": 21 if units == "celsius" else 70, "units": units}


model = ScriptedModel(
    [  # a stand-in for a real model: first a wrong call, then the fix
        call("get_weather", {"city": "Paris", "unit": "fahrenheit"}),
        call("get_weather", {"city": "Paris", "units": "fahrenheit"}),
        "It is 70°F in Paris.",
    ]
)
result = Agent(model, [get_weather]).run_sync("How warm is it in Paris, in °F?")
print(result.messages[2].content)  # what the model was told about its first call
print(result.output)
